// Wall-clock timing of a piece of work (stage times, epoch times, benchmarks).
#pragma once
#include <chrono>

namespace maskwatch {

class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  double ms() const { return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_).count(); }
  double seconds() const { return ms() / 1000; }
  void reset() { start_ = std::chrono::steady_clock::now(); }

 private:
  std::chrono::steady_clock::time_point start_;
};

}  // namespace maskwatch
