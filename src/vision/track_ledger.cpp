#include "vision/track_ledger.h"

#include <algorithm>

#include "vision/crop.h"

namespace maskwatch {

int longest_verdict(const std::map<int, int>& frames_per_verdict) {
  int best = kUncertain, best_n = 0;
  for (const auto& [v, n] : frames_per_verdict)
    if (v != kUncertain && n > best_n) best = v, best_n = n;
  return best;
}

LedgerUpdate TrackLedger::observe(FrameResult& r, const cv::Mat& frame, double now) {
  r.faces.erase(std::remove_if(r.faces.begin(), r.faces.end(),
                               [&](const TrackedFace& f) { return f.face_score < opts_.min_face_score; }),
                r.faces.end());
  LedgerUpdate u;
  // A track is news when it first shows: its verdict may have changed before, while the
  // tracker followed it under the threshold.
  std::map<int, const TrackedFace*> shown, fresh;
  for (const auto& f : r.faces) {
    auto [it, is_new] = open_.try_emplace(f.track_id);
    Open& t = it->second;
    shown[f.track_id] = &f;
    if (is_new) fresh[f.track_id] = &f, t.start = now;
    t.last_seen = now;
    ++t.frames_per_verdict[f.verdict];
    if (f.verdict != kUncertain) t.top_score = std::max(t.top_score, static_cast<double>(f.confidence));
    if (!opts_.snapshots) {
      t.box = f.box;
    } else if (f.face_score > t.best_face_score) {
      t.best_face_score = f.face_score;
      t.box = f.box;
      t.best_crop = crop_face(frame, f.box, opts_.snapshot_margin).clone();
    }
  }
  const auto verdict = [&](int id, bool is_new, int from, int to, float score) {
    u.verdicts.push_back({id, is_new, is_new ? kUncertain : from, to, score, open_.at(id).start, now, shown.at(id)->box});
  };
  for (const auto& c : r.changes)
    if (shown.count(c.track_id)) verdict(c.track_id, fresh.erase(c.track_id) > 0, c.from, c.to, c.confidence);
  for (const auto& [id, f] : fresh) verdict(id, true, kUncertain, f->verdict, f->confidence);
  for (int id : r.ended)
    if (auto it = open_.find(id); it != open_.end()) {
      u.ended.push_back(finish(id, std::move(it->second)));
      open_.erase(it);
    }
  return u;
}

std::vector<TrackEnded> TrackLedger::end_all() {
  std::vector<TrackEnded> out;
  for (auto& [id, t] : open_) out.push_back(finish(id, std::move(t)));
  open_.clear();
  return out;
}

std::map<int, int> TrackLedger::in_view() const {
  std::map<int, int> out;
  for (const auto& [id, t] : open_) ++out[longest_verdict(t.frames_per_verdict)];
  return out;
}

TrackEnded TrackLedger::finish(int track_id, Open&& t) const {
  TrackEnded e;
  e.track_id = track_id;
  e.verdict = longest_verdict(t.frames_per_verdict);
  e.top_score = t.top_score;
  e.start_time = t.start;
  e.end_time = t.last_seen;
  e.box = t.box;
  e.snapshot = std::move(t.best_crop);
  return e;
}

}  // namespace maskwatch
