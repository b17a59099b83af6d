// The one "hold up to N, drop the oldest" rule of the queues that wait for a slow or absent
// receiver (webhook deliveries, MQTT messages during a broker outage, history rows while the
// disk is full): the newest is what matters, and memory stays bounded. The caller locks.
#pragma once
#include <algorithm>
#include <cstddef>
#include <deque>
#include <optional>
#include <utility>

namespace maskwatch {

// Appends `item`; when `q` already holds `capacity` (at least 1), the oldest is removed first
// and returned, for the caller to count or log.
template <class T>
std::optional<T> push_dropping_oldest(std::deque<T>& q, T item, size_t capacity) {
  std::optional<T> dropped;
  if (q.size() >= std::max<size_t>(1, capacity)) {
    dropped = std::move(q.front());
    q.pop_front();
  }
  q.push_back(std::move(item));
  return dropped;
}

}  // namespace maskwatch
