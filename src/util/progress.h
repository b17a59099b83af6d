// A terminal progress bar for long work (training epochs, evaluation, feature caching).
// On a terminal it redraws one line; when stderr is not a terminal (CI logs, pipes) it
// prints a plain line at most every few seconds and at the end, so logs stay readable.
#pragma once
#include <chrono>
#include <cstddef>
#include <string>

namespace maskwatch {

class ProgressBar {
 public:
  // total: number of items; unit: what an item is ("img", "frame").
  ProgressBar(std::string label, size_t total, std::string unit = "it");
  ~ProgressBar();  // finishes the line if finish() was not called

  // Advances by n items; `status` is extra text such as "loss 0.123 acc 97.1%".
  void advance(size_t n, const std::string& status = "");
  void finish(const std::string& status = "");

  double elapsed_s() const;
  double rate() const;  // items per second so far

  static bool enabled();  // false when MASKWATCH_NO_PROGRESS is set

 private:
  void draw(bool final);
  std::string label_, unit_, status_;
  size_t total_, done_ = 0;
  bool tty_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

// "1m05s", "3.2s"
std::string format_duration(double seconds);

}  // namespace maskwatch
