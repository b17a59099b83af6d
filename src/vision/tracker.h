// Gives faces stable ids across frames (greedy IoU matching, centre distance as a fallback
// for fast moves) and smooths each track's class probabilities over time so labels do not
// flicker:
//   - exponential moving average with a time constant (alpha = 1 - exp(-dt / tau)), so the
//     smoothing is the same at 15 or 60 FPS;
//   - hysteresis: the verdict switches to a class only when its smoothed probability
//     reaches `enter` (default 0.65), so a face hovering around 0.5 keeps its verdict...
//   - ...unless no class is confident for `uncertain_after_s`: then it is shown as uncertain.
//     A classification the quality gate did not answer (model/face_quality.h: this face
//     cannot be judged from this frame) moves the average like any other but never counts
//     as confident: it cannot give, change or keep a verdict. A face too dark or grainy to
//     judge for `uncertain_after_s` becomes uncertain instead of keeping a stale or guessed
//     verdict, and its next judged frame starts the average afresh, as for a new face (what
//     the unjudged frames averaged to says nothing; a mask may have come off in the dark).
//     One unjudged frame in a transition still helps the average along.
// With tau = 0.15 s a clean change from one class to the other flips the verdict after
// tau * ln(1 / (1 - enter)) = 0.16 s, well inside the 0.5 s we allow.
// A classification counts as evidence for one frame interval: when a track was not
// classified for a while (per-track scheduling, or a missed detection), the next result
// moves the average by one frame's weight, not by the whole gap's, so one bad crop after a
// pause cannot flip the verdict on its own.
#pragma once
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "vision/box_iou.h"

namespace maskwatch {

struct TrackerOptions {
  double iou_match = 0.3;
  double max_centre_shift = 0.6;   // fallback match: centre moved less than this x box size
  double max_missed_s = 0.5;       // a track survives this long without a detection
  double tau_s = 0.15;             // EMA time constant
  double enter = 0.65;             // smoothed probability needed to (re)assign a verdict
  double uncertain_after_s = 0.6;  // no confident class for this long -> uncertain
  // A face already followed stays while the detector still scores it at least this; a new
  // face needs the detector's threshold to start a track (Pipeline). In a dim room a face
  // hovers around the threshold (the sample clip at -7 EV: 0.42-0.68) and blinks in and out
  // of the overlay and the counts; 0.4 keeps it. Off (1) by default: in good light it keeps
  // false faces more than it finds real ones (README "A face already followed").
  double keep_score = 1.0;
};

constexpr int kUncertain = -1;

struct Observation {
  cv::Rect2f box;
  float face_score = 0;
  std::vector<float> probs;  // classifier output for this face; empty: not classified this frame
  bool answered = true;      // the quality gate trusts `probs` (false: never confident, see above)
  double p_right = 1;        // the gate's P(right) for `probs`
};

// What the classifier scheduler needs to know about the track an observation belongs to.
struct TrackStatus {
  double classified_at = 0;   // time of the last classification
  cv::Rect2f classified_box;  // the box then
  cv::Rect2f box_now;         // the box in this frame
  std::vector<float> raw;     // its probabilities (empty: never classified)
  int verdict = kUncertain;
  bool followed = true;  // false: a weak box that continues no track (not a face in this frame)
  bool is_new() const { return raw.empty(); }
};

struct TrackedFace {
  int track_id = 0;
  cv::Rect2f box;
  float face_score = 0;
  std::vector<float> raw, smoothed;  // raw: the track's latest classification
  bool classified = false;           // the classifier ran on this face in this frame
  bool answered = true;              // the gate trusted the latest classification
  double p_right = 1;                // its P(right)
  int verdict = kUncertain;          // class index or kUncertain
  float confidence = 0;              // smoothed probability of the verdict (max smoothed if uncertain)
};

struct VerdictChange {
  int track_id;
  int from, to;  // class indices or kUncertain
  float confidence;
  bool first = false;  // the track's first verdict (it just appeared)
};

class Tracker {
 public:
  explicit Tracker(const TrackerOptions& options = {}) : opts_(options) {}

  // One call per frame with all observations; t_s is the frame's time (seconds, increasing).
  // Returns one TrackedFace per observation (same order); verdict changes go to *changes,
  // the ids of the tracks it lets go (unseen for longer than max_missed_s: the one
  // definition of a track's end, vision/track_ledger.h) to *ended.
  std::vector<TrackedFace> update(const std::vector<Observation>& observations, double t_s,
                                  std::vector<VerdictChange>* changes = nullptr, std::vector<int>* ended = nullptr);

  // The same in two steps, so the caller can decide which faces to classify in between:
  // assign() matches the boxes to tracks (starting new ones) and tells what each track
  // knows; commit() takes the observations of the followed boxes in the same order (probs
  // may be empty). `may_start` (per box; empty: every box may) says which boxes may start a
  // track: one that may not and continues none is not followed (TrackStatus::followed) and
  // must be left out of commit().
  std::vector<TrackStatus> assign(const std::vector<cv::Rect2f>& boxes, double t_s,
                                  const std::vector<bool>& may_start = {});
  std::vector<TrackedFace> commit(const std::vector<Observation>& observations, double t_s,
                                  std::vector<VerdictChange>* changes = nullptr, std::vector<int>* ended = nullptr);

  int tracks_started() const { return next_id_ - 1; }
  // The last box of every track still followed (seen within max_missed_s), this frame's or not.
  std::vector<cv::Rect2f> boxes() const;

 private:
  struct Track {
    int id;
    cv::Rect2f box;
    std::vector<float> smoothed;
    int verdict = kUncertain;
    double last_seen, last_update, last_confident;
    bool had_verdict;
    cv::Rect2f classified_box;
    std::vector<float> raw;
    bool answered = true;
    double p_right = 1;
    bool restart = false;  // unjudged until uncertain: the next judged frame starts the average afresh
  };
  void set_verdict(Track& t, int next, bool first, std::vector<VerdictChange>* changes);
  void smooth(Track& t, const std::vector<float>& probs, bool answered, double now,
              std::vector<VerdictChange>* changes);

  TrackerOptions opts_;
  std::vector<Track> tracks_;
  std::vector<size_t> assigned_;  // track index per observation, from assign() for commit()
  double last_frame_ = -1;        // time of the previous commit (-1: none yet)
  int next_id_ = 1;
};

}  // namespace maskwatch
