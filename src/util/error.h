// One error type for everything the user can cause (bad files, bad folders, bad flags).
// The CLI prints what() as a single line and exits with code 1, so messages must be
// one line, say what was wrong and name the file involved.
#pragma once
#include <stdexcept>
#include <string>

namespace maskwatch {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace maskwatch
