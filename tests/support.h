// Helpers shared by the tests: where the shared data is, temp dirs, running the CLI.
#pragma once
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

namespace maskwatch::test {

namespace fs = std::filesystem;

// ../shared (configured at build time); fails the test (not skip) when it is missing,
// so a CI without the data cannot pass by testing nothing.
fs::path shared_dir();
fs::path shared_path(const std::string& relative);
fs::path asset(const std::string& name);  // shared/models/name

// A fresh empty directory under the system temp dir, removed by the destructor.
struct TempDir {
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  fs::path path;
  fs::path operator/(const std::string& name) const { return path / name; }
};

struct CliResult {
  int exit_code = -1;
  std::string out, err;
};
// Runs the maskwatch binary with arguments (shell-quoted here), capturing output.
CliResult run_cli(const std::vector<std::string>& args, int timeout_s = 600);

void write_bytes(const fs::path& path, const std::string& bytes);
std::string read_bytes(const fs::path& path);

}  // namespace maskwatch::test
