// Events per second (frames captured, frames processed, frames shown), one estimator for the
// whole product: the events of the last `window` counted, so the rate is that of what really
// happened, and it falls when events slow down or stop. (An average of 1/interval per event
// overshoots when intervals vary, e.g. a pacer taking 2 of 3 frames gives gaps of 1 and 2
// frames, and an EMA of it keeps its last value when events stop.) Before a window has
// passed since the first event it is the spacing of the events so far. Not thread-safe.
#pragma once
#include <chrono>
#include <deque>

namespace maskwatch {

class RateMeter {
 public:
  using Clock = std::chrono::steady_clock;
  explicit RateMeter(Clock::duration window = std::chrono::seconds(3)) : window_(window) {}

  void tick(Clock::time_point t) {
    if (events_.empty()) first_ = t;
    events_.push_back(t);
    while (t - events_.front() > window_) events_.pop_front();
  }

  // In the first window, 0 until there are 3 events (two gaps: one alone could be a short one).
  double rate(Clock::time_point now) const {
    size_t n = 0;
    for (auto it = events_.rbegin(); it != events_.rend() && now - *it <= window_; ++it) ++n;
    if (now - first_ >= window_) return static_cast<double>(n) / std::chrono::duration<double>(window_).count();
    if (events_.size() < 3) return 0.0;
    const double span = std::chrono::duration<double>(events_.back() - events_.front()).count();
    return span > 0 ? static_cast<double>(events_.size() - 1) / span : 0.0;
  }

  void reset() { events_.clear(); }  // a new run of events: nothing of the last one counts

 private:
  Clock::duration window_;
  std::deque<Clock::time_point> events_;
  Clock::time_point first_{};
};

}  // namespace maskwatch
