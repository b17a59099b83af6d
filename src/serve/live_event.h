// What `serve` tells the world, typed: a face's verdict changed, a face track ended, a camera's
// status changed, an alert fired. Engine and AlertEngine publish these on the EventBus; the
// dashboard's event stream (SSE), MQTT and the alert rules read them. They become JSON only
// where they leave the process, through to_json below (one vocabulary with `run --events`,
// vision/events.h).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "vision/capture.h"  // CameraStatus
#include "vision/track_ledger.h"

namespace maskwatch {

struct FaceVerdict {
  std::string camera;
  VerdictChanged change;
};

struct FaceEnded {
  std::string camera;
  TrackEnded track;  // without its snapshot crop (stored as a file: snapshot_url)
  int64_t id = 0;    // its history row (0 while storage fails)
  std::string snapshot_url;
  std::string clip_url;  // clips.unmasked_tracks: the clip of its first moment without a mask, or ""
};

// The detail of the `offline` every camera gets when the service stops cleanly (history shows
// the time it was down; no camera_offline alert comes of it).
inline constexpr const char* kServiceStopped = "the service stopped";
// A camera's status row for a run that ended without a clean stop (Storage::close_unclean_stop).
inline constexpr const char* kUncleanStop =
    "the service stopped without a clean stop (killed or crashed); down since about here";

struct StatusChanged {
  std::string camera;
  CameraStatus status = CameraStatus::Starting;
  std::string detail;
  double time = 0;
};

struct AlertFired {
  int64_t id = 0;  // its history row
  std::string rule, kind, camera, message, snapshot_url;
  std::string clip_url;  // ready clips.after_s after `time` (until then the URL answers 404 with Retry-After)
  double time = 0;
  std::optional<int> track_id;           // unmasked_face
  std::optional<double> since;           // unmasked_face, camera_offline
  std::optional<double> compliance;      // low_compliance
  std::optional<int64_t> faces;          // low_compliance
};

using LiveEvent = std::variant<FaceVerdict, FaceEnded, StatusChanged, AlertFired>;

// Clips are video of people, for admins only: a viewer's events do not offer their URL.
enum class ClipUrls { Shown, Hidden };

// `classes` names the verdicts (class indices) of face events.
nlohmann::json to_json(const LiveEvent& e, const std::vector<std::string>& classes,
                       ClipUrls clip_urls = ClipUrls::Shown);
nlohmann::json to_json(const AlertFired& a);

}  // namespace maskwatch
