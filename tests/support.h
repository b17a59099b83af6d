// Helpers shared by the tests: where the shared data is, temp dirs, running the CLI.
#pragma once
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <opencv2/core.hpp>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace maskwatch::test {

namespace fs = std::filesystem;

// ../shared (configured at build time); fails the test (not skip) when it is missing,
// so a CI without the data cannot pass by testing nothing.
fs::path shared_dir();
fs::path shared_path(const std::string& relative);
fs::path asset(const std::string& name);  // shared/models/name
// One real masked face from real-masks, resized to the classifier's 160 px (INTER_AREA).
cv::Mat real_face_crop();

// A fresh empty directory under the system temp dir, removed by the destructor.
struct TempDir {
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  fs::path path;
  fs::path operator/(const std::string& name) const { return path / name; }
};

// spdlog's default logger writes into a string while this lives (the previous one is put back
// by the destructor). `pattern` as spdlog's, e.g. "%l|%v" for "warning|text".
class CapturedLog {
 public:
  explicit CapturedLog(const std::string& pattern = "%v");
  ~CapturedLog();
  CapturedLog(const CapturedLog&) = delete;
  CapturedLog& operator=(const CapturedLog&) = delete;
  std::string text() const { return out_.str(); }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> previous_;
};

struct CliResult {
  int exit_code = -1;
  std::string out, err;
};
// Runs the maskwatch binary with arguments (shell-quoted here), capturing output.
CliResult run_cli(const std::vector<std::string>& args, int timeout_s = 600);

// A program started in the background (stdout and stderr to files in its own TempDir), for
// tests that signal, stall or race a running process. The destructor kills what is left.
class BackgroundProcess {
 public:
  explicit BackgroundProcess(const std::vector<std::string>& argv);  // argv[0]: program path
  ~BackgroundProcess();
  BackgroundProcess(const BackgroundProcess&) = delete;
  BackgroundProcess& operator=(const BackgroundProcess&) = delete;
  void signal(int sig) const;
  // Exit code (128 + signal when killed), or -1 if still running after timeout_s.
  int wait(double timeout_s);
  bool running();
  std::string out() const;
  std::string err() const;
  int pid() const { return pid_; }

 private:
  TempDir dir_;
  int pid_ = -1;
  int status_ = -1;
};
// The maskwatch binary with these arguments, in the background.
std::vector<std::string> cli_argv(const std::vector<std::string>& args);
// Waits until pred() holds (polling every 50 ms); false after timeout_s.
bool wait_until(const std::function<bool()>& pred, double timeout_s);

void write_bytes(const fs::path& path, const std::string& bytes);
// A loopback TCP port that was free a moment ago (for servers the test starts).
int free_port();
size_t line_count(const fs::path& p);
// Fine detail in `region` of a BGR image (clipped to it): the variance of the Laplacian of its
// grey levels. A face keeps a lot; a pixelated or flat one almost none.
double detail_energy(const cv::Mat& img, const cv::Rect2f& region);
std::string read_bytes(const fs::path& path);
// A JPEG of `img` whose EXIF says "rotate 90 degrees clockwise to display" (orientation 6).
std::string jpeg_with_exif_orientation_6(const cv::Mat& img);

}  // namespace maskwatch::test
