// The product's one event vocabulary, as JSON (`run --events` lines; `serve`'s live events,
// MQTT and history add "camera" and, for "end", "id" and "snapshot_url": serve/live_event.h):
//   {"type":"new"|"update","track_id","label","from","score","start_time","box":[x1,y1,x2,y2],"time"}
//     a track's first verdict ("from" null) and every change of it while it shows;
//   {"type":"end","track_id","label","score","start_time","end_time","box"}
//     the tracker let it go: label is the verdict shown longest, score the highest confidence;
// and, from `run --events` only, one line per frame (its lines above also carry "frame"):
//   {"type":"frame","frame","time_ms","faces":[{"track_id","x1","y1","x2","y2","label","score",
//    "face_score","probs"}],"fps"}
// Labels are class names, or "uncertain". Times are seconds: of the source in `run`, Unix
// time in `serve`. (Before 2026-12-03 `run` wrote {"type":"verdict","from","to"} lines
// instead of new/update and no "end"; nothing in maskwatch reads events files back.)
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "vision/pipeline.h"
#include "vision/track_ledger.h"

namespace maskwatch {

std::string verdict_name(int verdict, const std::vector<std::string>& classes);
nlohmann::json face_json(const TrackedFace& f, const std::vector<std::string>& classes);
nlohmann::json frame_event(const FrameResult& r, const std::vector<std::string>& classes, double fps);
nlohmann::json verdict_json(const VerdictChanged& v, const std::vector<std::string>& classes);
nlohmann::json ended_json(const TrackEnded& e, const std::vector<std::string>& classes);

}  // namespace maskwatch
