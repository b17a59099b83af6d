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

int counted_verdict(const std::map<int, int>& frames_per_verdict, double unmasked_s, int mask_class,
                    double after_s) {
  if (mask_class >= 0 && unmasked_s >= after_s - 1e-9) {  // frame times summed: 10 x 0.1 s is 1 s
    std::map<int, int> without = frames_per_verdict;
    without.erase(mask_class);
    const int v = longest_verdict(without);
    if (v != kUncertain) return v;
  }
  return longest_verdict(frames_per_verdict);
}

LedgerUpdate TrackLedger::observe(FrameResult& r, const cv::Mat& frame, double now) {
  std::vector<TrackedFace> shown;
  std::vector<std::string> zone_of;  // of the faces shown
  for (auto& f : r.faces) {
    if (f.face_score < opts_.min_face_score) continue;
    ZonePlace place = place_face(opts_.zones, f.box, frame.size());
    if (!place.counts) continue;
    shown.push_back(std::move(f));
    zone_of.push_back(std::move(place.zone));
  }
  r.faces = std::move(shown);
  LedgerUpdate u;
  for (size_t i = 0; i < r.faces.size(); ++i) {
    const TrackedFace& f = r.faces[i];
    auto [it, is_new] = open_.try_emplace(f.track_id);
    Open& t = it->second;
    if (is_new) t.start = now, t.zone = zone_of[i];
    // News is what was shown against what was last reported: a track is new when it first
    // shows (its verdict may have changed before, under the threshold), and a verdict that
    // changed while it was hidden is reported when it shows again, from the one last said.
    if (is_new || f.verdict != t.reported) {
      u.verdicts.push_back({f.track_id, is_new, is_new ? kUncertain : t.reported, f.verdict, f.confidence, t.start,
                            now, f.box, t.zone});
      t.reported = f.verdict;
    }
    // The time since it last showed is credited to what it shows now (a gap longer than
    // max_missed_s would have ended the track, so at most that).
    if (!is_new && opts_.mask_class >= 0 && f.verdict != kUncertain && f.verdict != opts_.mask_class)
      t.unmasked_s += std::clamp(r.time_s - t.last_shown_s, 0.0, opts_.max_missed_s);
    t.last_seen = now;
    t.last_shown_s = r.time_s;
    ++t.frames_per_verdict[f.verdict];
    double& top = t.top_score_per_verdict[f.verdict];
    top = std::max(top, static_cast<double>(f.confidence));
    if (!opts_.snapshots) {
      t.box = f.box;
    } else if (f.face_score > t.best_face_score) {
      t.best_face_score = f.face_score;
      t.box = f.box;
      t.best_crop = crop_face(frame, f.box, opts_.snapshot_margin).clone();
    }
  }
  // A track ends as the tracker's do: unseen (here: not shown) for longer than max_missed_s
  // of frame time. The tracker letting it go ends it too (below the threshold, that comes later).
  for (auto it = open_.begin(); it != open_.end();) {
    const bool let_go = std::find(r.ended.begin(), r.ended.end(), it->first) != r.ended.end();
    if (let_go || r.time_s - it->second.last_shown_s > opts_.max_missed_s) {
      u.ended.push_back(finish(it->first, std::move(it->second)));
      it = open_.erase(it);
    } else {
      ++it;
    }
  }
  return u;
}

std::vector<TrackEnded> TrackLedger::end_all() {
  std::vector<TrackEnded> out;
  for (auto& [id, t] : open_) out.push_back(finish(id, std::move(t)));
  open_.clear();
  return out;
}

std::map<int, int> TrackLedger::in_view(const std::string* zone) const {
  std::map<int, int> out;
  for (const auto& [id, t] : open_)
    if (!zone || t.zone == *zone) ++out[counted_verdict(t)];
  return out;
}

int TrackLedger::counted_verdict(const Open& t) const {
  return maskwatch::counted_verdict(t.frames_per_verdict, t.unmasked_s, opts_.mask_class,
                                    opts_.unmasked_counts_after_s);
}

TrackEnded TrackLedger::finish(int track_id, Open&& t) const {
  TrackEnded e;
  e.track_id = track_id;
  e.verdict = counted_verdict(t);
  e.unmasked_s = t.unmasked_s;
  // The score of the label it ends with (the best score of any label was printed beside it,
  // e.g. "with_mask" with the 0.99997 of a frame without a mask).
  e.top_score = t.top_score_per_verdict[e.verdict];
  e.start_time = t.start;
  e.end_time = t.last_seen;
  e.box = t.box;
  e.snapshot = std::move(t.best_crop);
  e.zone = std::move(t.zone);
  return e;
}

}  // namespace maskwatch
