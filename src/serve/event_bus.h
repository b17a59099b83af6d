// Live events for server-sent events: a bounded ring of JSON lines with sequence numbers.
// Publishers never block on readers; a reader that falls more than `capacity` behind skips
// ahead (and is told how many it missed).
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

namespace maskwatch {

class EventBus {
 public:
  explicit EventBus(size_t capacity = 1000) : capacity_(capacity) {}

  void publish(std::string json_line) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ring_.push_back(std::move(json_line));
      if (ring_.size() > capacity_) ring_.pop_front();
      ++next_;
    }
    cv_.notify_all();
  }

  // Sequence number the next event will get (a new reader starts here).
  uint64_t head() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return next_;
  }

  // Events from `*cursor` on, waiting up to `timeout` for one; advances *cursor.
  std::vector<std::string> read(uint64_t* cursor, std::chrono::milliseconds timeout, uint64_t* missed = nullptr) {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait_for(lock, timeout, [&] { return next_ > *cursor || closed_; });
    const uint64_t first = next_ - ring_.size();
    if (missed) *missed = *cursor < first ? first - *cursor : 0;
    if (*cursor < first) *cursor = first;
    std::vector<std::string> out(ring_.begin() + static_cast<long>(*cursor - first), ring_.end());
    *cursor = next_;
    return out;
  }

  void close() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      closed_ = true;
    }
    cv_.notify_all();
  }
  bool closed() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return closed_;
  }

 private:
  size_t capacity_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::string> ring_;
  uint64_t next_ = 0;
  bool closed_ = false;
};

}  // namespace maskwatch
