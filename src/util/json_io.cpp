#include "util/json_io.h"

#include "util/error.h"
#include "util/files.h"

namespace maskwatch {

void write_json_atomic(const std::filesystem::path& path, const json& value) {
  // Replace invalid UTF-8 (e.g. odd file names) instead of throwing mid-write.
  write_file_atomic(path, value.dump(2, ' ', false, json::error_handler_t::replace) + "\n");
}

json read_json(const std::filesystem::path& path, const std::string& what) {
  const std::string text = read_file_text(path, what);
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw Error(what + " " + path.string() + ": not valid JSON (" + e.what() + ")");
  }
}

}  // namespace maskwatch
