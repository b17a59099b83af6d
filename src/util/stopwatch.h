// Wall-clock timing of a piece of work (stage times, epoch times, benchmarks), and the time
// of day as Unix seconds (history rows, events).
#pragma once
#include <chrono>

namespace maskwatch {

class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  double ms() const {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_).count();
  }
  double seconds() const { return ms() / 1000; }
  void reset() { start_ = std::chrono::steady_clock::now(); }

 private:
  std::chrono::steady_clock::time_point start_;
};

// Seconds since 1970 (UTC), with fractions: the time stamps of events and history rows.
inline double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace maskwatch
