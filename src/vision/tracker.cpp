#include "vision/tracker.h"

#include <algorithm>
#include <cmath>
#include <tuple>

namespace maskwatch {

double iou(const cv::Rect2f& a, const cv::Rect2f& b) {
  const float inter = (a & b).area();
  const float uni = a.area() + b.area() - inter;
  return uni > 0 ? inter / uni : 0.0;
}

namespace {
double centre_shift(const cv::Rect2f& a, const cv::Rect2f& b) {
  const double dx = (a.x + a.width / 2) - (b.x + b.width / 2), dy = (a.y + a.height / 2) - (b.y + b.height / 2);
  return std::hypot(dx, dy) / std::max({a.width, a.height, b.width, b.height, 1.0f});
}
}  // namespace

void Tracker::smooth(Track& t, const std::vector<float>& probs, double now, std::vector<VerdictChange>* changes) {
  const bool first = t.smoothed.size() != probs.size();
  if (first) {
    t.smoothed = probs;  // first observation: start from it
  } else {
    const double alpha = 1.0 - std::exp(-std::max(0.0, now - t.last_update) / opts_.tau_s);
    for (size_t c = 0; c < probs.size(); ++c)
      t.smoothed[c] = static_cast<float>(t.smoothed[c] + alpha * (probs[c] - t.smoothed[c]));
  }
  t.last_update = now;
  const auto best = std::max_element(t.smoothed.begin(), t.smoothed.end());
  const int best_class = static_cast<int>(best - t.smoothed.begin());
  int next = t.verdict;
  if (*best >= opts_.enter) {
    next = best_class;
    t.last_confident = now;
  } else if (now - t.last_confident >= opts_.uncertain_after_s) {
    next = kUncertain;
  }
  if (next != t.verdict) {
    if (changes)
      changes->push_back({t.id, t.verdict, next, next == kUncertain ? *best : t.smoothed[static_cast<size_t>(next)],
                          first || !t.had_verdict});
    t.had_verdict = true;
    t.verdict = next;
  }
}

std::vector<TrackedFace> Tracker::update(const std::vector<Observation>& obs, double now,
                                         std::vector<VerdictChange>* changes) {
  // Greedy matching: best IoU pairs first, then centre distance for what is left.
  std::vector<std::tuple<double, size_t, size_t>> pairs;  // (score, track, observation)
  for (size_t t = 0; t < tracks_.size(); ++t)
    for (size_t o = 0; o < obs.size(); ++o) {
      const double v = iou(tracks_[t].box, obs[o].box);
      if (v >= opts_.iou_match) pairs.emplace_back(1.0 + v, t, o);
      else if (centre_shift(tracks_[t].box, obs[o].box) <= opts_.max_centre_shift)
        pairs.emplace_back(1.0 - centre_shift(tracks_[t].box, obs[o].box) / (opts_.max_centre_shift + 1e-9) * 0.999, t, o);
    }
  std::sort(pairs.begin(), pairs.end(), [](const auto& a, const auto& b) { return std::get<0>(a) > std::get<0>(b); });
  std::vector<int> track_of(obs.size(), -1);
  std::vector<char> track_used(tracks_.size(), 0);
  for (const auto& [score, t, o] : pairs) {
    if (track_used[t] || track_of[o] >= 0) continue;
    track_used[t] = 1;
    track_of[o] = static_cast<int>(t);
  }
  for (size_t o = 0; o < obs.size(); ++o) {
    if (track_of[o] >= 0) continue;
    tracks_.push_back({next_id_++, obs[o].box, {}, kUncertain, now, now, now, false});
    track_of[o] = static_cast<int>(tracks_.size() - 1);
  }
  std::vector<TrackedFace> out;
  for (size_t o = 0; o < obs.size(); ++o) {
    Track& t = tracks_[static_cast<size_t>(track_of[o])];
    t.box = obs[o].box;
    t.last_seen = now;
    smooth(t, obs[o].probs, now, changes);
    TrackedFace f;
    f.track_id = t.id;
    f.box = obs[o].box;
    f.face_score = obs[o].face_score;
    f.raw = obs[o].probs;
    f.smoothed = t.smoothed;
    f.verdict = t.verdict;
    f.confidence = t.verdict == kUncertain ? *std::max_element(t.smoothed.begin(), t.smoothed.end())
                                           : t.smoothed[static_cast<size_t>(t.verdict)];
    out.push_back(std::move(f));
  }
  tracks_.erase(std::remove_if(tracks_.begin(), tracks_.end(),
                               [&](const Track& t) { return now - t.last_seen > opts_.max_missed_s; }),
                tracks_.end());
  return out;
}

}  // namespace maskwatch
