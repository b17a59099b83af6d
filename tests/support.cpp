#include "support.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <spdlog/sinks/ostream_sink.h>

#include "media/image_io.h"
#include "util/net.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <stdexcept>
#include <thread>

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

cv::Mat real_face_crop() {
  const cv::Mat img = load_image_or_throw(
      shared_path("data/real-masks/with_mask/jolignier__JPEGImages_02ce9b3ce3309179fc223d36cee7db75_1.jpg"));
  cv::Mat out;
  cv::resize(img, out, cv::Size(160, 160), 0, 0, cv::INTER_AREA);
  return out;
}
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

CapturedLog::CapturedLog(const std::string& pattern) : previous_(spdlog::default_logger()) {
  auto logger = std::make_shared<spdlog::logger>("captured", std::make_shared<spdlog::sinks::ostream_sink_mt>(out_));
  logger->set_pattern(pattern);
  spdlog::set_default_logger(std::move(logger));
}
// (set_default_logger also takes the captured logger out of spdlog's registry)
CapturedLog::~CapturedLog() { spdlog::set_default_logger(previous_); }

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

BackgroundProcess::BackgroundProcess(const std::vector<std::string>& argv) {
  const std::string out = (dir_.path / "out").string(), err = (dir_.path / "err").string();
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    setpgid(0, 0);  // its own group: the test's Ctrl-C handling never reaches it
    const int fo = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int fe = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fo, 1);
    dup2(fe, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
}

BackgroundProcess::~BackgroundProcess() {
  if (pid_ > 0 && status_ < 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

void BackgroundProcess::signal(int sig) const { kill(pid_, sig); }

int BackgroundProcess::wait(double timeout_s) {
  const auto start = std::chrono::steady_clock::now();
  while (status_ < 0) {
    int st = 0;
    const pid_t r = waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      break;
    }
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > timeout_s) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return status_;
}

bool BackgroundProcess::running() { return wait(0) < 0; }
std::string BackgroundProcess::out() const { return read_bytes(dir_.path / "out"); }
std::string BackgroundProcess::err() const { return read_bytes(dir_.path / "err"); }

std::vector<std::string> cli_argv(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {MASKWATCH_TEST_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

bool wait_until(const std::function<bool()>& pred, double timeout_s) {
  const auto start = std::chrono::steady_clock::now();
  while (!pred()) {
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > timeout_s) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
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

int free_port() { return free_loopback_port(); }

size_t line_count(const fs::path& p) {
  std::ifstream in(p);
  size_t n = 0;
  for (std::string line; std::getline(in, line);) ++n;
  return n;
}

double detail_energy(const cv::Mat& img, const cv::Rect2f& region) {
  const cv::Rect r = cv::Rect(region) & cv::Rect(0, 0, img.cols, img.rows);
  cv::Mat grey, lap;
  cv::cvtColor(img(r), grey, cv::COLOR_BGR2GRAY);
  cv::Laplacian(grey, lap, CV_32F);
  cv::Scalar mean, sd;
  cv::meanStdDev(lap, mean, sd);
  return sd[0] * sd[0];
}

std::string jpeg_with_exif_orientation_6(const cv::Mat& img) {
  std::vector<uchar> jpg;
  cv::imencode(".jpg", img, jpg);
  // APP1 Exif: "Exif\0\0" + little-endian TIFF header + IFD0 with one entry (0x0112 SHORT 1 = 6).
  const unsigned char tiff[] = {'I',  'I',  42, 0, 8, 0, 0, 0,              // header, IFD0 at offset 8
                                1,    0,                                    // one entry
                                0x12, 0x01, 3,  0, 1, 0, 0, 0, 6, 0, 0, 0,  // Orientation = 6
                                0,    0,    0,  0};                         // no next IFD
  std::string app1 = std::string("Exif\0\0", 6) + std::string(reinterpret_cast<const char*>(tiff), sizeof tiff);
  const size_t len = app1.size() + 2;
  std::string segment = {'\xFF', '\xE1', static_cast<char>(len >> 8), static_cast<char>(len & 0xFF)};
  segment += app1;
  std::string out(reinterpret_cast<const char*>(jpg.data()), jpg.size());
  out.insert(2, segment);  // right after SOI
  return out;
}

}  // namespace maskwatch::test
