#include "vision/pipeline.h"

#include "util/stopwatch.h"
#include "vision/crop.h"

namespace maskwatch {

Pipeline::Pipeline(MaskClassifier& classifier, FaceDetector& detector, const PipelineOptions& options)
    : classifier_(classifier), detector_(detector), opts_(options), tracker_(options.tracker) {}

std::vector<Pipeline::Seen> Pipeline::observe(const cv::Mat& frame, StageTimes& times) {
  Stopwatch sw;
  const auto faces = detector_.detect(frame);
  times.detect_ms = sw.ms();
  sw.reset();
  std::vector<cv::Mat> crops;
  for (const auto& f : faces) crops.push_back(crop_face(frame, f.box, opts_.crop_margin));
  auto preds = classifier_.classify(crops);  // all faces in one forward
  times.classify_ms = sw.ms();
  std::vector<Seen> seen;
  for (size_t i = 0; i < faces.size(); ++i) seen.push_back({faces[i], std::move(preds[i])});
  return seen;
}

FrameResult Pipeline::process(const cv::Mat& frame, int64_t frame_index, double t_s) {
  FrameResult r;
  r.frame = frame_index;
  r.time_s = t_s;
  std::vector<Observation> obs;
  for (const auto& s : observe(frame, r.times)) obs.push_back({s.face.box, s.face.score, s.prediction.probs});
  Stopwatch sw;
  r.faces = tracker_.update(obs, t_s, &r.changes);
  r.times.track_ms = sw.ms();
  return r;
}

std::vector<TrackedFace> Pipeline::classify_still(const cv::Mat& image) {
  StageTimes times;
  std::vector<TrackedFace> out;
  for (const auto& s : observe(image, times)) {
    TrackedFace f;
    f.box = s.face.box;
    f.face_score = s.face.score;
    f.raw = f.smoothed = s.prediction.probs;
    f.verdict = s.prediction.label;
    f.confidence = s.prediction.score;
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace maskwatch
