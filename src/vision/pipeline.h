// One frame through the real-time path: faces (YuNet) -> tracks -> square crops of the faces
// the schedule picks -> the classifier (XNNPACK by default, OpenCV DNN on request; one
// face per forward) -> smoothing. Times every stage.
#pragma once
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <optional>
#include <vector>

#include "vision/classify_schedule.h"
#include "vision/face_detector.h"
#include "vision/mask_classifier.h"
#include "vision/tracker.h"

namespace maskwatch {

struct StageTimes {
  double detect_ms = 0, classify_ms = 0, track_ms = 0, draw_ms = 0;
  double total() const { return detect_ms + classify_ms + track_ms + draw_ms; }
  StageTimes& operator+=(const StageTimes& o) {
    detect_ms += o.detect_ms, classify_ms += o.classify_ms, track_ms += o.track_ms, draw_ms += o.draw_ms;
    return *this;
  }
  // Per-frame means of a sum over n frames, as the JSON object every summary uses.
  nlohmann::json mean_json(double n) const {
    n = n > 0 ? n : 1;
    return {{"detect", detect_ms / n}, {"classify", classify_ms / n}, {"track", track_ms / n}, {"draw", draw_ms / n}};
  }
};

struct FrameResult {
  int64_t frame = 0;
  double time_s = 0;
  std::vector<TrackedFace> faces;
  std::vector<VerdictChange> changes;
  std::vector<int> ended;  // tracks the tracker let go in this frame (unseen for max_missed_s)
  StageTimes times;
  int classified = 0;  // faces that went through the classifier in this frame
};

struct PipelineOptions {
  double crop_margin = 0.5;  // crop side = face side x 1.5: head and shoulders, like the training photos
  // Face score a new face needs to start a track; unset: the detector's score_threshold. (`serve`
  // shares one detector among cameras and gives each camera's pipeline its own.) A face
  // already followed stays down to tracker.keep_score.
  std::optional<float> start_score;
  TrackerOptions tracker;
  ClassifyScheduleOptions schedule;
};

class Pipeline {
 public:
  Pipeline(MaskClassifier& classifier, FaceDetector& detector, const PipelineOptions& options = {});
  // Frames must come in time order; t_s is the frame's media or wall time in seconds.
  FrameResult process(const cv::Mat& bgr_frame, int64_t frame_index, double t_s);
  // The same without the detector: the faces of the last frame that had it (a frame in which
  // nothing moved, vision/motion_gate.h). Tracks, schedule and smoothing go on as usual.
  FrameResult process_with_last_faces(const cv::Mat& bgr_frame, int64_t frame_index, double t_s);
  // Faces and raw (unsmoothed) probabilities of a single still image.
  std::vector<TrackedFace> classify_still(const cv::Mat& bgr_image);
  int tracks_started() const { return tracker_.tracks_started(); }
  // Every face box to hide before a frame leaves the process: the last box of each track
  // (Tracker::boxes, this frame's or not) and of each face that starts no track (under the
  // start score; `serve` asks the shared detector down to its lowest threshold), kept as long
  // as a track is (tracker.max_missed_s), so a frame in which the detector misses either face
  // does not show it.
  std::vector<cv::Rect2f> privacy_boxes() const;
  const FaceDetector& detector() const { return *detector_; }
  // Runs the next frames on these models (the same model files: `serve` gives a camera's
  // pipeline the models of whichever inference worker takes its next frame; the tracker and
  // schedule state stay with the pipeline).
  void bind(MaskClassifier& classifier, FaceDetector& detector) { classifier_ = &classifier, detector_ = &detector; }

 private:
  std::vector<Prediction> classify(const cv::Mat& frame, const std::vector<cv::Rect2f>& boxes);
  float start_score() const { return opts_.start_score.value_or(detector_->options().score_threshold); }
  FrameResult track_and_classify(const cv::Mat& frame, int64_t frame_index, double t_s, FrameResult r);
  std::vector<Face> last_faces_;  // of the last frame that had the detector, down to keep_score
  // Faces no track follows, each with the time it was last found: hidden like a track's last box.
  struct UnfollowedFace {
    cv::Rect2f box;
    double seen_s;
  };
  void remember_unfollowed(std::vector<cv::Rect2f> now, double t_s);
  std::vector<UnfollowedFace> unfollowed_;
  MaskClassifier* classifier_;
  FaceDetector* detector_;
  PipelineOptions opts_;
  Tracker tracker_;
};

}  // namespace maskwatch
