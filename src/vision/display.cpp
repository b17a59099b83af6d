#include "vision/display.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>

#include "util/error.h"
#include "util/paths.h"  // executable_dir

namespace maskwatch {
namespace {

constexpr const char* kNotInstalled =
    "the window plugin libmaskwatch_display.so is not installed (package maskwatch-display)";

template <typename F>
F symbol(void* lib, const char* name) {
  void* p = dlsym(lib, name);
  if (!p) throw Error(std::string("display plugin lacks ") + name);
  return reinterpret_cast<F>(p);
}

// Beside the executable in a build folder; in lib/maskwatch when installed (the maskwatch-display
// package, which a headless site leaves out). Empty when neither is there.
std::filesystem::path plugin_path() {
  std::error_code ec;
  for (const auto& p : {executable_dir() / "libmaskwatch_display.so",
                        executable_dir().parent_path() / "lib" / "maskwatch" / "libmaskwatch_display.so"})
    if (std::filesystem::exists(p, ec)) return p;
  return {};
}

}  // namespace

Display::Display(const std::string& title) : title_(title) {
  const auto plugin = plugin_path();
  if (plugin.empty()) throw Error(kNotInstalled);
  lib_ = dlopen(plugin.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib_) throw Error(std::string("cannot open a window (") + dlerror() + "): use --no-display");
  try {
    show_ = symbol<decltype(show_)>(lib_, "maskwatch_display_show");
    wait_key_ = symbol<decltype(wait_key_)>(lib_, "maskwatch_display_wait_key");
    close_ = symbol<decltype(close_)>(lib_, "maskwatch_display_close");
    symbol<void (*)(const char*)>(lib_, "maskwatch_display_open")(title_.c_str());
  } catch (...) {
    dlclose(lib_);
    throw;
  }
}

std::string Display::unavailable_reason() {
  if (plugin_path().empty()) return kNotInstalled;
  const pid_t pid = fork();
  if (pid < 0) return "";  // cannot tell: the window itself will try
  if (pid == 0) {
    // Qt's own complaints would break the one-line error promise: the parent says it.
    if (const int devnull = ::open("/dev/null", O_WRONLY); devnull >= 0) {
      dup2(devnull, STDOUT_FILENO);
      dup2(devnull, STDERR_FILENO);
    }
    try {
      Display probe("maskwatch");  // opened, and closed again as it goes out of scope
    } catch (...) {
      _exit(3);
    }
    _exit(0);  // not exit(): Qt's atexit handlers stay out of it
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
  if (WIFEXITED(status) && WEXITSTATUS(status) == 3)
    return "the window plugin libmaskwatch_display.so cannot be loaded";
  const char* display = std::getenv("DISPLAY");
  return std::string("cannot connect to the display ") + (display ? display : "(DISPLAY is not set)");
}

Display::~Display() {
  close_();
  // Not dlclose'd: Qt keeps threads and atexit handlers that must not outlive their code.
}

void Display::show(const cv::Mat& bgr) {
  if (bgr.type() == CV_8UC3) show_(title_.c_str(), bgr.data, bgr.cols, bgr.rows, bgr.step);
}

int Display::wait_key(int ms) { return wait_key_(ms); }

}  // namespace maskwatch
