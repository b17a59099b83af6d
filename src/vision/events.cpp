#include "vision/events.h"

#include <cmath>

namespace maskwatch {

namespace {
double round2(double v) { return std::round(v * 100) / 100; }
// One division: round2(v * 100) / 100 divided twice and printed 0.9998999999999999.
double round4(double v) { return std::round(v * 10000) / 10000; }
}  // namespace

std::string verdict_name(int verdict, const std::vector<std::string>& classes) {
  return verdict == kUncertain || verdict < 0 || static_cast<size_t>(verdict) >= classes.size()
             ? "uncertain"
             : classes[static_cast<size_t>(verdict)];
}

nlohmann::json face_json(const TrackedFace& f, const std::vector<std::string>& classes) {
  nlohmann::json probs = nlohmann::json::object();
  for (size_t c = 0; c < classes.size() && c < f.smoothed.size(); ++c)
    probs[classes[c]] = round4(f.smoothed[c]);
  return {{"track_id", f.track_id},
          {"x1", round2(f.box.x)},
          {"y1", round2(f.box.y)},
          {"x2", round2(f.box.x + f.box.width)},
          {"y2", round2(f.box.y + f.box.height)},
          {"label", verdict_name(f.verdict, classes)},
          {"score", f.confidence},
          {"face_score", f.face_score},
          {"probs", probs},
          {"p_right", round4(f.p_right)}};
}

nlohmann::json frame_event(const FrameResult& r, const std::vector<std::string>& classes, double fps) {
  nlohmann::json faces = nlohmann::json::array();
  for (const auto& f : r.faces) faces.push_back(face_json(f, classes));
  return {{"type", "frame"},
          {"frame", r.frame},
          {"time_ms", round2(r.time_s * 1000)},
          {"faces", faces},
          {"fps", round2(fps)}};
}

namespace {
nlohmann::json box_json(const cv::Rect2f& b) { return {b.x, b.y, b.x + b.width, b.y + b.height}; }
}  // namespace

nlohmann::json verdict_json(const VerdictChanged& v, const std::vector<std::string>& classes) {
  nlohmann::json j = {{"type", v.is_new ? "new" : "update"},
          {"track_id", v.track_id},
          {"label", verdict_name(v.to, classes)},
          {"from", v.is_new ? nlohmann::json(nullptr) : nlohmann::json(verdict_name(v.from, classes))},
          {"score", v.score},
          {"start_time", v.start_time},
          {"box", box_json(v.box)},
          {"time", v.time}};
  if (!v.zone.empty()) j["zone"] = v.zone;
  return j;
}

nlohmann::json ended_json(const TrackEnded& e, const std::vector<std::string>& classes) {
  nlohmann::json j = {{"type", "end"},
          {"track_id", e.track_id},
          {"label", verdict_name(e.verdict, classes)},
          {"score", e.top_score},
          {"start_time", e.start_time},
          {"end_time", e.end_time},
          {"box", box_json(e.box)},
          // Why a track that showed a mask longer can end without_mask (track_ledger.h).
          {"unmasked_s", round2(e.unmasked_s)}};
  if (!e.zone.empty()) j["zone"] = e.zone;  // the include zone the face entered by
  return j;
}

}  // namespace maskwatch
