// The life of each face track as the product reports it, one definition for `run` and
// `serve`: a track opens when its face first shows (at or over the face threshold), its
// verdict changes are news while it shows (one shown after a change while hidden is news
// then), and it ends as the tracker's tracks do, when not shown for max_missed_s of frame
// time (or when the tracker lets it go: FrameResult::ended), with the verdict it is counted
// by (counted_verdict below) and a crop of its best-scored face. It stamps events with the
// time it is given (source time in `run`, the wall clock in `serve`), so it is tested without
// a model, a camera or a clock.
#pragma once
#include <map>
#include <opencv2/core.hpp>
#include <vector>

#include "vision/pipeline.h"
#include "vision/zones.h"

namespace maskwatch {

struct VerdictChanged {
  int track_id = 0;
  bool is_new = false;  // the track's first event: `from` means nothing
  int from = kUncertain, to = kUncertain;
  float score = 0;  // smoothed probability of `to`
  double start_time = 0, time = 0;
  cv::Rect2f box;
  std::string zone;  // the include zone the track entered by ("" without include zones)
};

struct TrackEnded {
  int track_id = 0;
  int verdict = kUncertain;             // counted_verdict: what history, compliance and summaries count
  double top_score = 0;                 // highest confidence while it showed `verdict`
  double unmasked_s = 0;                // frame time shown with a verdict without a mask
  double start_time = 0, end_time = 0;  // first and last shown
  cv::Rect2f box;                       // of its best face (with snapshots), else its last
  cv::Mat snapshot;                     // crop around its best face; empty without snapshots
  std::string zone;                     // the include zone it entered by
};

struct LedgerOptions {
  float min_face_score = 0;  // faces under it are not shown: dropped from the result, no news
  bool snapshots = false;    // keep a crop of each track's best face for TrackEnded
  double snapshot_margin = 0.5;
  double max_missed_s = TrackerOptions{}.max_missed_s;  // the tracker's: one definition of a track's end
  std::vector<Zone> zones;  // faces that do not count there are not shown (vision/zones.h)
  // The compliant class (mask_class_index; -1: none known, every track counts by its longest
  // verdict) and how long a face must show a verdict without it to count as unmasked.
  int mask_class = -1;
  double unmasked_counts_after_s = 1.0;
};

struct LedgerUpdate {
  std::vector<VerdictChanged> verdicts;  // in the order they happened; new tracks after changes
  std::vector<TrackEnded> ended;
};

class TrackLedger {
 public:
  explicit TrackLedger(const LedgerOptions& options = {}) : opts_(options) {}
  // One processed frame (its faces under the threshold, or outside the zones, are removed
  // from r.faces); `frame` is read for snapshots and its size for the zones. `now` stamps the
  // events.
  LedgerUpdate observe(FrameResult& r, const cv::Mat& frame, double now);
  // Ends every open track now (source finished, detection turned off, shutdown).
  std::vector<TrackEnded> end_all();
  // Open tracks by the verdict each is counted by so far (of one zone, when given).
  std::map<int, int> in_view(const std::string* zone = nullptr) const;
  size_t open_tracks() const { return open_.size(); }

 private:
  struct Open {
    double start = 0, last_seen = 0;  // event times
    double last_shown_s = 0;           // frame time
    int reported = kUncertain;         // the verdict the last event said
    std::map<int, int> frames_per_verdict;
    std::map<int, double> top_score_per_verdict;
    double unmasked_s = 0;  // frame time shown without a mask (each frame: the time since the last shown)
    float best_face_score = -1;
    cv::Rect2f box;
    cv::Mat best_crop;
    std::string zone;
  };
  TrackEnded finish(int track_id, Open&& t) const;
  int counted_verdict(const Open& t) const;

  LedgerOptions opts_;
  std::map<int, Open> open_;
};

// The verdict shown in most frames; uncertain only when there was no other.
int longest_verdict(const std::map<int, int>& frames_per_verdict);

// The verdict a track is counted by: a face shown without a mask (any class but mask_class)
// for unmasked_s >= after_s in all counts by the class without a mask it showed longest,
// even if it showed the mask longer; otherwise the verdict shown longest. Counting by the
// longest verdict alone, a person who took the mask off for 30 s of 72 counted as compliant
// while serve's unmasked_face alert fired for them (review of 2026-12-05): compliance and
// alerts must tell one story. after_s (1 s) keeps a brief misjudged moment of a masked face
// from counting; the verdict itself is already smoothed (tracker.tau_s, tracker.enter).
int counted_verdict(const std::map<int, int>& frames_per_verdict, double unmasked_s, int mask_class,
                    double after_s);

}  // namespace maskwatch
