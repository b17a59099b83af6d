#include "serve/frame_pacer.h"

#include <algorithm>

namespace maskwatch {

namespace {
// Capture times jitter: a frame a few percent early still counts as due.
constexpr double kJitter = 0.05;
constexpr double kMaxCredit = 2.0;
}  // namespace

bool FramePacer::admit(double time_s) {
  if (limit_ <= 0) return true;
  if (!started_) {
    started_ = true;
    last_time_ = time_s;
    credit_ = 0;  // the first frame is processed and pays its credit
    return true;
  }
  const double dt = std::max(0.0, time_s - last_time_);
  last_time_ = time_s;
  credit_ = std::min(kMaxCredit, credit_ + limit_ * dt);
  if (credit_ < 1.0 - kJitter) return false;
  credit_ -= 1.0;  // may go a little below 0 (an early frame): the average rate stays exact
  return true;
}

}  // namespace maskwatch
