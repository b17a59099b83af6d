#include "vision/pipeline.h"

#include <algorithm>

#include "util/stopwatch.h"
#include "vision/crop.h"

namespace maskwatch {

Pipeline::Pipeline(MaskClassifier& classifier, FaceDetector& detector, const PipelineOptions& options)
    : classifier_(&classifier), detector_(&detector), opts_(options), tracker_(options.tracker) {}

std::vector<Prediction> Pipeline::classify(const cv::Mat& frame, const std::vector<cv::Rect2f>& boxes) {
  // One face per forward: as fast per face as a batch here (bench, 2026-11-26), and the
  // network keeps one input shape, so its buffers stay at batch-1 size (-9 MiB at 4 faces).
  std::vector<Prediction> preds;
  for (const auto& b : boxes)
    preds.push_back(std::move(classifier_->classify({crop_face(frame, b, opts_.crop_margin)})[0]));
  return preds;
}

FrameResult Pipeline::process(const cv::Mat& frame, int64_t frame_index, double t_s) {
  FrameResult r;
  Stopwatch sw;
  // Down to the detector's own threshold too: in `serve` that is the lowest of any camera's,
  // and faces under this camera's are still hidden (privacy_boxes).
  last_faces_ = detector_->detect(
      frame, std::min({detector_->options().score_threshold, start_score(), static_cast<float>(opts_.tracker.keep_score)}));
  r.times.detect_ms = sw.ms();
  return track_and_classify(frame, frame_index, t_s, std::move(r));
}

FrameResult Pipeline::process_with_last_faces(const cv::Mat& frame, int64_t frame_index, double t_s) {
  return track_and_classify(frame, frame_index, t_s, FrameResult{});
}

FrameResult Pipeline::track_and_classify(const cv::Mat& frame, int64_t frame_index, double t_s, FrameResult r) {
  r.frame = frame_index;
  r.time_s = t_s;
  Stopwatch sw;
  std::vector<cv::Rect2f> boxes;
  std::vector<bool> may_start;
  const float start = start_score();
  for (const auto& f : last_faces_) boxes.push_back(f.box), may_start.push_back(f.score >= start);
  // A face under the start score is a face only where it continues a track.
  std::vector<Face> faces;
  std::vector<TrackStatus> followed;
  std::vector<cv::Rect2f> unfollowed;
  auto status = tracker_.assign(boxes, t_s, may_start);
  for (size_t i = 0; i < status.size(); ++i)
    if (status[i].followed)
      faces.push_back(last_faces_[i]), followed.push_back(std::move(status[i]));
    else
      unfollowed.push_back(last_faces_[i].box);
  remember_unfollowed(std::move(unfollowed), t_s);
  const auto pick = faces_to_classify(followed, t_s, opts_.schedule);
  r.times.track_ms = sw.ms();
  sw.reset();
  std::vector<cv::Rect2f> picked;
  for (size_t i = 0; i < faces.size(); ++i)
    if (pick[i]) picked.push_back(faces[i].crop_box);
  auto preds = classify(frame, picked);
  r.times.classify_ms = sw.ms();
  r.classified = static_cast<int>(picked.size());
  sw.reset();
  std::vector<Observation> obs;
  for (size_t i = 0, next = 0; i < faces.size(); ++i) {
    Observation o{faces[i].box, faces[i].score, {}};
    if (pick[i]) {
      Prediction& p = preds[next++];
      o.probs = std::move(p.probs);
      o.answered = p.answered;
      o.p_right = p.p_right;
    }
    obs.push_back(std::move(o));
  }
  r.faces = tracker_.commit(obs, t_s, &r.changes, &r.ended);
  r.times.track_ms += sw.ms();
  return r;
}

void Pipeline::remember_unfollowed(std::vector<cv::Rect2f> now, double t_s) {
  // An earlier box stays until max_missed_s, unless an unfollowed face of this frame overlaps it
  // as a track would match it: that face's box replaces it. (Not a followed face: one walking in
  // front of a missed face must not unhide it.)
  const auto found_again = [&](const cv::Rect2f& old) {
    for (const auto& b : now)
      if (iou(b, old) >= opts_.tracker.iou_match) return true;
    return false;
  };
  std::vector<UnfollowedFace> kept;
  for (const auto& u : unfollowed_)
    if (t_s - u.seen_s <= opts_.tracker.max_missed_s && !found_again(u.box)) kept.push_back(u);
  for (const auto& b : now) kept.push_back({b, t_s});
  unfollowed_ = std::move(kept);
}

std::vector<cv::Rect2f> Pipeline::privacy_boxes() const {
  auto boxes = tracker_.boxes();
  for (const auto& u : unfollowed_) boxes.push_back(u.box);
  return boxes;
}

std::vector<TrackedFace> Pipeline::classify_still(const cv::Mat& image) {
  const auto faces = detector_->detect(image);
  std::vector<cv::Rect2f> crop_boxes;
  for (const auto& f : faces) crop_boxes.push_back(f.crop_box);
  const auto preds = classify(image, crop_boxes);
  std::vector<TrackedFace> out;
  for (size_t i = 0; i < faces.size(); ++i) {
    TrackedFace f;
    f.box = faces[i].box;
    f.face_score = faces[i].score;
    f.raw = f.smoothed = preds[i].probs;
    f.classified = true;
    f.answered = preds[i].answered;
    f.p_right = preds[i].p_right;
    // A face the quality gate cannot judge is shown as uncertain; its probabilities stay.
    f.verdict = preds[i].answered ? preds[i].label : kUncertain;
    f.confidence = preds[i].score;
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace maskwatch
