#include "vision/tracker.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <tuple>

namespace maskwatch {

namespace {
double centre_shift(const cv::Rect2f& a, const cv::Rect2f& b) {
  const double dx = (a.x + a.width / 2) - (b.x + b.width / 2), dy = (a.y + a.height / 2) - (b.y + b.height / 2);
  return std::hypot(dx, dy) / std::max({a.width, a.height, b.width, b.height, 1.0f});
}
}  // namespace

void Tracker::smooth(Track& t, const std::vector<float>& probs, bool answered, double now,
                     std::vector<VerdictChange>* changes) {
  const bool first = t.smoothed.size() != probs.size();
  if (first || (t.restart && answered)) {
    t.smoothed = probs;  // first observation (or first judged one after an unjudged stretch): start from it
    t.restart = false;
  } else {
    // One classification is one frame's evidence (see the header), however long ago the last one was.
    const double since_last = now - t.last_update;
    const double dt = last_frame_ >= 0 ? std::min(since_last, now - last_frame_) : since_last;
    const double alpha = 1.0 - std::exp(-std::max(0.0, dt) / opts_.tau_s);
    for (size_t c = 0; c < probs.size(); ++c)
      t.smoothed[c] = static_cast<float>(t.smoothed[c] + alpha * (probs[c] - t.smoothed[c]));
  }
  t.last_update = now;
  const auto best = std::max_element(t.smoothed.begin(), t.smoothed.end());
  const int best_class = static_cast<int>(best - t.smoothed.begin());
  int next = t.verdict;
  if (answered && *best >= opts_.enter) {
    next = best_class;
    t.last_confident = now;
  } else if (now - t.last_confident >= opts_.uncertain_after_s) {
    next = kUncertain;
    if (!answered) t.restart = true;  // what the unjudged frames averaged to says nothing either
  }
  set_verdict(t, next, first, changes);
}

void Tracker::set_verdict(Track& t, int next, bool first, std::vector<VerdictChange>* changes) {
  if (next == t.verdict) return;
  if (changes) {
    const float confidence =
        t.smoothed.empty() ? 0.f
        : next == kUncertain ? *std::max_element(t.smoothed.begin(), t.smoothed.end())
                             : t.smoothed[static_cast<size_t>(next)];
    changes->push_back({t.id, t.verdict, next, confidence, first || !t.had_verdict});
  }
  t.had_verdict = true;
  t.verdict = next;
}

std::vector<TrackedFace> Tracker::update(const std::vector<Observation>& obs, double now,
                                         std::vector<VerdictChange>* changes, std::vector<int>* ended) {
  std::vector<cv::Rect2f> boxes;
  for (const auto& o : obs) boxes.push_back(o.box);
  assign(boxes, now);
  return commit(obs, now, changes, ended);
}

std::vector<cv::Rect2f> Tracker::boxes() const {
  std::vector<cv::Rect2f> out;
  for (const auto& t : tracks_) out.push_back(t.box);
  return out;
}

std::vector<TrackStatus> Tracker::assign(const std::vector<cv::Rect2f>& boxes, double now,
                                         const std::vector<bool>& may_start) {
  if (!may_start.empty() && may_start.size() != boxes.size())
    throw std::logic_error("Tracker::assign: may_start differs from the boxes in number");
  // Greedy matching: best IoU pairs first, then centre distance for what is left.
  // A weak box (may not start a track) continues one only where it overlaps it, and after
  // every strong box has had its pick: it must not take a track from the face that holds it.
  const auto is_weak = [&](size_t o) { return !may_start.empty() && !may_start[o]; };
  std::vector<std::tuple<double, size_t, size_t>> pairs;  // (score, track, observation)
  for (size_t t = 0; t < tracks_.size(); ++t)
    for (size_t o = 0; o < boxes.size(); ++o) {
      const double v = iou(tracks_[t].box, boxes[o]);
      if (is_weak(o)) {
        if (v >= opts_.iou_match) pairs.emplace_back(v - 1.0, t, o);
      } else if (v >= opts_.iou_match)
        pairs.emplace_back(1.0 + v, t, o);
      else if (centre_shift(tracks_[t].box, boxes[o]) <= opts_.max_centre_shift)
        pairs.emplace_back(1.0 - centre_shift(tracks_[t].box, boxes[o]) / (opts_.max_centre_shift + 1e-9) * 0.999, t,
                           o);
    }
  std::sort(pairs.begin(), pairs.end(), [](const auto& a, const auto& b) { return std::get<0>(a) > std::get<0>(b); });
  constexpr size_t kNone = static_cast<size_t>(-1);
  assigned_.assign(boxes.size(), kNone);
  std::vector<char> track_used(tracks_.size(), 0);
  for (const auto& [score, t, o] : pairs) {
    if (track_used[t] || assigned_[o] != kNone) continue;
    track_used[t] = 1;
    assigned_[o] = t;
  }
  std::vector<TrackStatus> status;
  std::vector<size_t> followed;  // track per followed box, for commit()
  for (size_t o = 0; o < boxes.size(); ++o) {
    if (assigned_[o] == kNone) {
      if (is_weak(o)) {
        TrackStatus weak;
        weak.box_now = boxes[o];
        weak.followed = false;
        status.push_back(std::move(weak));
        continue;
      }
      tracks_.push_back({next_id_++, boxes[o], {}, kUncertain, now, now, now, false, {}, {}});
      assigned_[o] = tracks_.size() - 1;
    }
    const Track& t = tracks_[assigned_[o]];
    status.push_back({t.last_update, t.classified_box, boxes[o], t.raw, t.verdict});
    followed.push_back(assigned_[o]);
  }
  assigned_ = std::move(followed);
  return status;
}

std::vector<TrackedFace> Tracker::commit(const std::vector<Observation>& obs, double now,
                                         std::vector<VerdictChange>* changes, std::vector<int>* ended) {
  if (obs.size() != assigned_.size()) throw std::logic_error("Tracker::commit: observations differ from assign()");
  std::vector<TrackedFace> out;
  for (size_t o = 0; o < obs.size(); ++o) {
    Track& t = tracks_[assigned_[o]];
    t.box = obs[o].box;
    t.last_seen = now;
    TrackedFace f;
    if (!obs[o].probs.empty()) {
      smooth(t, obs[o].probs, obs[o].answered, now, changes);
      t.classified_box = obs[o].box;
      t.raw = obs[o].probs;
      t.answered = obs[o].answered;
      t.p_right = obs[o].p_right;
      f.classified = true;
    }
    f.track_id = t.id;
    f.box = obs[o].box;
    f.face_score = obs[o].face_score;
    f.raw = t.raw;
    f.answered = t.answered;
    f.p_right = t.p_right;
    f.smoothed = t.smoothed;
    f.verdict = t.verdict;
    if (t.verdict != kUncertain)
      f.confidence = t.smoothed[static_cast<size_t>(t.verdict)];
    else if (!t.smoothed.empty())
      f.confidence = *std::max_element(t.smoothed.begin(), t.smoothed.end());
    out.push_back(std::move(f));
  }
  assigned_.clear();
  last_frame_ = now;
  const auto gone = [&](const Track& t) { return now - t.last_seen > opts_.max_missed_s; };
  if (ended)
    for (const auto& t : tracks_)
      if (gone(t)) ended->push_back(t.id);
  tracks_.erase(std::remove_if(tracks_.begin(), tracks_.end(), gone), tracks_.end());
  return out;
}

}  // namespace maskwatch
