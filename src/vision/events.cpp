#include "vision/events.h"

#include <cmath>

namespace maskwatch {

namespace {
double round2(double v) { return std::round(v * 100) / 100; }
}  // namespace

std::string verdict_name(int verdict, const std::vector<std::string>& classes) {
  return verdict == kUncertain || verdict < 0 || static_cast<size_t>(verdict) >= classes.size()
             ? "uncertain"
             : classes[static_cast<size_t>(verdict)];
}

nlohmann::json face_json(const TrackedFace& f, const std::vector<std::string>& classes) {
  nlohmann::json probs = nlohmann::json::object();
  for (size_t c = 0; c < classes.size() && c < f.smoothed.size(); ++c)
    probs[classes[c]] = round2(f.smoothed[c] * 100) / 100;
  return {{"track_id", f.track_id},
          {"x1", round2(f.box.x)},
          {"y1", round2(f.box.y)},
          {"x2", round2(f.box.x + f.box.width)},
          {"y2", round2(f.box.y + f.box.height)},
          {"label", verdict_name(f.verdict, classes)},
          {"score", f.confidence},
          {"face_score", f.face_score},
          {"probs", probs}};
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

nlohmann::json verdict_event(const FrameResult& r, const VerdictChange& c, const std::vector<std::string>& classes) {
  return {{"type", "verdict"},
          {"frame", r.frame},
          {"time_ms", round2(r.time_s * 1000)},
          {"track_id", c.track_id},
          {"from", c.first ? nlohmann::json(nullptr) : nlohmann::json(verdict_name(c.from, classes))},
          {"to", verdict_name(c.to, classes)},
          {"score", c.confidence}};
}

}  // namespace maskwatch
