// `serve`'s live events (serve/live_event.h) for their readers (the dashboard's event stream,
// MQTT, alert rules): a bounded ring of typed events with sequence numbers, shared
// (immutable) by every reader. Publishers never block on readers; a reader that falls more
// than `capacity` behind skips ahead (and is told how many it missed).
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <memory>
#include <string>
#include <vector>

#include "serve/live_event.h"

namespace maskwatch {

class EventBus {
 public:
  explicit EventBus(size_t capacity = 1000) : capacity_(capacity) {}

  using Item = std::shared_ptr<const LiveEvent>;

  void publish(LiveEvent event) {
    auto item = std::make_shared<const LiveEvent>(std::move(event));
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ring_.push_back(std::move(item));
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
  std::vector<Item> read(uint64_t* cursor, std::chrono::milliseconds timeout, uint64_t* missed = nullptr) {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait_for(lock, timeout, [&] { return next_ > *cursor || closed_; });
    const uint64_t first = next_ - ring_.size();
    if (missed) *missed = *cursor < first ? first - *cursor : 0;
    if (*cursor < first) *cursor = first;
    std::vector<Item> out(ring_.begin() + static_cast<long>(*cursor - first), ring_.end());
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
  std::deque<Item> ring_;
  uint64_t next_ = 0;
  bool closed_ = false;
};

}  // namespace maskwatch
