// The JSON-lines event stream of `maskwatch run --events`: one line per frame
//   {"type":"frame","frame","time_ms","faces":[{"track_id","x1","y1","x2","y2","label","score",
//    "face_score","probs"}],"fps"}
// plus one line whenever a tracked face's verdict changes
//   {"type":"verdict","frame","time_ms","track_id","from","to","score"}
// Labels are class names, or "uncertain"; "from" is null for a new track's first verdict.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "vision/pipeline.h"

namespace maskwatch {

std::string verdict_name(int verdict, const std::vector<std::string>& classes);
nlohmann::json face_json(const TrackedFace& f, const std::vector<std::string>& classes);
nlohmann::json frame_event(const FrameResult& r, const std::vector<std::string>& classes, double fps);
nlohmann::json verdict_event(const FrameResult& r, const VerdictChange& c, const std::vector<std::string>& classes);

}  // namespace maskwatch
