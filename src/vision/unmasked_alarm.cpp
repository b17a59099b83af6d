#include "vision/unmasked_alarm.h"

namespace maskwatch {

std::vector<int> UnmaskedAlarm::update(const FrameResult& r) {
  std::vector<int> due;
  for (const auto& f : r.faces) {
    last_seen_[f.track_id] = r.time_s;
    if (f.verdict == mask_class_) {
      since_.erase(f.track_id);
      fired_.erase(f.track_id);
    } else if (f.verdict == kUncertain) {
      since_.erase(f.track_id);  // not known to be unmasked; the episode may go on
    } else {
      const double since = since_.emplace(f.track_id, r.time_s).first->second;
      if (r.time_s - since >= after_s_ && fired_.insert(f.track_id).second) due.push_back(f.track_id);
    }
  }
  // A face missed for a frame or two keeps its episode; one gone for a second ends it.
  for (auto it = last_seen_.begin(); it != last_seen_.end();) {
    if (r.time_s - it->second <= 1.0) {
      ++it;
      continue;
    }
    since_.erase(it->first);
    fired_.erase(it->first);
    it = last_seen_.erase(it);
  }
  return due;
}

}  // namespace maskwatch
