#include "vision/pipeline.h"

#include "perf/timing.h"
#include "vision/crop.h"

namespace maskwatch {

Pipeline::Pipeline(MaskClassifier& classifier, FaceDetector& detector, const PipelineOptions& options)
    : classifier_(classifier), detector_(detector), opts_(options), tracker_(options.tracker) {}

std::vector<Observation> Pipeline::observe(const cv::Mat& frame, StageTimes& times) {
  Stopwatch sw;
  const auto faces = detector_.detect(frame);
  times.detect_ms = sw.ms();
  sw.reset();
  std::vector<cv::Mat> crops;
  for (const auto& f : faces) crops.push_back(crop_face(frame, f.box, opts_.crop_margin));
  const auto preds = classifier_.classify(crops);
  times.classify_ms = sw.ms();
  std::vector<Observation> obs;
  for (size_t i = 0; i < faces.size(); ++i) obs.push_back({faces[i].box, faces[i].score, preds[i].probs});
  return obs;
}

FrameResult Pipeline::process(const cv::Mat& frame, int64_t frame_index, double t_s) {
  FrameResult r;
  r.frame = frame_index;
  r.time_s = t_s;
  const auto obs = observe(frame, r.times);
  Stopwatch sw;
  r.faces = tracker_.update(obs, t_s, &r.changes);
  r.times.track_ms = sw.ms();
  return r;
}

std::vector<TrackedFace> Pipeline::classify_still(const cv::Mat& image) {
  StageTimes times;
  std::vector<TrackedFace> out;
  for (const auto& o : observe(image, times)) {
    TrackedFace f;
    f.box = o.box;
    f.face_score = o.face_score;
    f.raw = f.smoothed = o.probs;
    const auto best = std::max_element(o.probs.begin(), o.probs.end());
    f.verdict = static_cast<int>(best - o.probs.begin());
    f.confidence = *best;
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace maskwatch
