#include "vision/classify_schedule.h"

#include <algorithm>

namespace maskwatch {

namespace {
bool unsure(const TrackStatus& t, double sure) {
  if (t.verdict == kUncertain || t.raw.empty()) return true;
  const auto best = std::max_element(t.raw.begin(), t.raw.end());
  return *best < sure || best - t.raw.begin() != t.verdict;
}
}  // namespace

std::vector<bool> faces_to_classify(const std::vector<TrackStatus>& tracks, double now,
                                    const ClassifyScheduleOptions& o) {
  std::vector<bool> pick(tracks.size(), false);
  long oldest = -1;  // the stalest face that is merely due for a refresh
  for (size_t i = 0; i < tracks.size(); ++i) {
    const auto& t = tracks[i];
    const double age = now - t.classified_at;
    if (o.refresh_s <= 0 || t.is_new() || unsure(t, o.sure) || iou(t.box_now, t.classified_box) < o.moved_iou ||
        age >= 2 * o.refresh_s) {
      pick[i] = true;
    } else if (age >= o.refresh_s && (oldest < 0 || age > now - tracks[static_cast<size_t>(oldest)].classified_at)) {
      oldest = static_cast<long>(i);
    }
  }
  if (oldest >= 0) pick[static_cast<size_t>(oldest)] = true;
  return pick;
}

}  // namespace maskwatch
