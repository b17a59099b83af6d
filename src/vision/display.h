// The `run` window. OpenCV's highgui (Qt5, ICU, and through it imgcodecs and videoio) costs
// about 50 MiB of resident libraries, so it lives in a plugin, libmaskwatch_display.so beside
// the executable, loaded only when a window is asked for: headless runs and `serve` never
// map it.
#pragma once
#include <opencv2/core.hpp>
#include <string>

namespace maskwatch {

class Display {
 public:
  // Loads the plugin and opens a window; throws Error with the reason when it cannot.
  explicit Display(const std::string& title);
  ~Display();
  Display(const Display&) = delete;
  Display& operator=(const Display&) = delete;

  // "" when a window can be opened here, else why not. Qt aborts the whole process when it
  // cannot reach the display (a stale `ssh -X` DISPLAY, a Wayland session without one), so
  // this tries in a child process: call it before the work starts, while only one thread runs.
  static std::string unavailable_reason();

  void show(const cv::Mat& bgr);
  // Waits up to `ms` for a key; the key's code, or -1.
  int wait_key(int ms);

 private:
  std::string title_;
  void* lib_ = nullptr;
  void (*show_)(const char*, const unsigned char*, int, int, size_t) = nullptr;
  int (*wait_key_)(int) = nullptr;
  void (*close_)() = nullptr;
};

}  // namespace maskwatch
