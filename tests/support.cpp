#include "support.h"

#include <sys/wait.h>

#include <fstream>
#include <random>
#include <sstream>

namespace maskwatch::test {

fs::path shared_dir() {
  const fs::path dir = MASKWATCH_TEST_SHARED_DIR;
  if (!fs::exists(dir / "models")) {
    ADD_FAILURE() << "shared data not found at " << dir << " (run scripts/setup.sh with --shared DIR)";
  }
  return dir;
}

fs::path shared_path(const std::string& relative) { return shared_dir() / relative; }
fs::path asset(const std::string& name) { return shared_dir() / "models" / name; }

TempDir::TempDir() {
  std::random_device rd;
  path = fs::temp_directory_path() / ("maskwatch-test-" + std::to_string(rd()) + std::to_string(rd()));
  fs::create_directories(path);
}
TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path, ec);
}

namespace {
std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}
}  // namespace

CliResult run_cli(const std::vector<std::string>& args, int timeout_s) {
  TempDir tmp;
  std::string cmd = "timeout " + std::to_string(timeout_s) + " " + quote(MASKWATCH_TEST_BINARY);
  for (const auto& a : args) cmd += " " + quote(a);
  cmd += " > " + quote((tmp.path / "out").string()) + " 2> " + quote((tmp.path / "err").string());
  const int status = std::system(cmd.c_str());
  CliResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_bytes(tmp.path / "out");
  r.err = read_bytes(tmp.path / "err");
  return r;
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace maskwatch::test
