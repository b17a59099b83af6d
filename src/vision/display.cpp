#include "vision/display.h"

#include <dlfcn.h>
#include <unistd.h>

#include <climits>
#include <filesystem>

#include "util/error.h"

namespace maskwatch {
namespace {

std::filesystem::path executable_dir() {
  char buf[PATH_MAX] = {};
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::filesystem::path(std::string(buf, static_cast<size_t>(n))).parent_path()
               : std::filesystem::path(".");
}

template <typename F>
F symbol(void* lib, const char* name) {
  void* p = dlsym(lib, name);
  if (!p) throw Error(std::string("display plugin lacks ") + name);
  return reinterpret_cast<F>(p);
}

}  // namespace

Display::Display(const std::string& title) : title_(title) {
  // Beside the executable in a build folder; in lib/maskwatch when installed (the .deb).
  auto plugin = executable_dir() / "libmaskwatch_display.so";
  if (std::error_code ec; !std::filesystem::exists(plugin, ec))
    plugin = executable_dir().parent_path() / "lib" / "maskwatch" / "libmaskwatch_display.so";
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

Display::~Display() {
  close_();
  // Not dlclose'd: Qt keeps threads and atexit handlers that must not outlive their code.
}

void Display::show(const cv::Mat& bgr) {
  if (bgr.type() == CV_8UC3) show_(title_.c_str(), bgr.data, bgr.cols, bgr.rows, bgr.step);
}

int Display::wait_key(int ms) { return wait_key_(ms); }

}  // namespace maskwatch
