#include "serve/config_fields.h"

namespace maskwatch {

const std::vector<Field<TrackerOptions>>& tracker_fields() {
  static const std::vector<Field<TrackerOptions>> f = {
      {"tau_s", &TrackerOptions::tau_s, 0, 10, "time constant of the smoothing of a face's class probabilities"},
      {"enter", &TrackerOptions::enter, 0.5, 1, "smoothed probability a class needs to become the verdict"},
      {"uncertain_after_s", &TrackerOptions::uncertain_after_s, 0, 60,
       "no confident class for this long: the face is shown as uncertain"},
      {"max_missed_s", &TrackerOptions::max_missed_s, 0, 60,
       "a face unseen for longer ends its track (history row, `end` event)"},
      {"iou_match", &TrackerOptions::iou_match, 0, 1, "box overlap that continues a track"},
      {"keep_score", &TrackerOptions::keep_score, 0.05, 1,
       "face score a face already followed needs to stay shown (a new face needs detector.score_threshold; 1: off; "
       "0.4 for dim rooms)"}};
  return f;
}

const std::vector<Field<MotionOptions>>& motion_fields() {
  static const std::vector<Field<MotionOptions>> f = {
      {"enabled", &MotionOptions::enabled, 0, 0, "run the face detector only on frames where something moved"},
      {"threshold", &MotionOptions::threshold, 1, 254, "grey levels a (shrunk) pixel must change by"},
      {"min_area", &MotionOptions::min_area, 0.0001, 1, "share of the pixels that must change"},
      {"full_every_s", &MotionOptions::full_every_s, 0.1, 60, "the detector runs at least this often"}};
  return f;
}

const std::vector<Field<DetectorSettings>>& detector_fields() {
  static const std::vector<Field<DetectorSettings>> f = {
      shared_field(face_stage::kFaceThreshold, &DetectorSettings::score_threshold),
      shared_field(face_stage::kDetectWidth, &DetectorSettings::detect_width),
      shared_field(face_stage::kMargin, &DetectorSettings::margin),
      shared_field(face_stage::kReclassifyAfter, &DetectorSettings::reclassify_after_s)};
  return f;
}

const std::vector<Field<CameraConfig>>& camera_fields() {
  static const std::vector<Field<CameraConfig>> f = {
      {"enabled", &CameraConfig::enabled, 0, 0, "false: the camera is listed but not opened"},
      {"width", &CameraConfig::width, 16, 8192, "requested camera resolution"},
      {"height", &CameraConfig::height, 16, 8192, "requested camera resolution"},
      {"fps_limit", &CameraConfig::fps_limit, 0.1, 240, "frames processed per second at most"},
      {"loop", &CameraConfig::loop, 0, 0, "video files: start again at the end (demo, tests)"},
      {"mirror", &CameraConfig::mirror, 0, 0, "mirror the picture"},
      {"reconnect_max_s", &CameraConfig::reconnect_max_s, 0.5, 3600, "longest wait between reconnect attempts"}};
  return f;
}

const std::vector<Field<HttpConfig>>& http_fields() {
  static const std::vector<Field<HttpConfig>> f = {
      {"listen", &HttpConfig::listen, 0, 0, "address to listen on (0.0.0.0: every interface)"},
      {"port", &HttpConfig::port, 0, 65535, "0: any free port (printed at start)"},
      {"max_stream_clients", &HttpConfig::max_stream_clients, 0, 1000,
       "MJPEG viewers of each camera; the next gets 503"},
      {"max_streams", &HttpConfig::max_streams, 0, 1000,
       "open streams (MJPEG viewers, event listeners) over all cameras"},
      {"max_connections_per_client", &HttpConfig::max_connections_per_client, 1, 10000,
       "open connections per remote address; the next gets 503"},
      {"request_timeout_s", &HttpConfig::request_timeout_s, 0.5, 300,
       "a complete request must arrive within this long (slow ones are closed)"},
      {"stream_fps", &HttpConfig::stream_fps, 1, 60, "MJPEG frames per second at most"},
      {"jpeg_quality", &HttpConfig::jpeg_quality, 10, 100, "JPEG quality of frames and streams"}};
  return f;
}

const std::vector<Field<HttpAuth>>& auth_fields() {
  static const std::vector<Field<HttpAuth>> f = {
      {"token", &HttpAuth::token, 0, 0, "admin: bearer token (or token_env: a variable holding it)", true},
      {"user", &HttpAuth::user, 0, 0, "admin: HTTP basic user"},
      {"password", &HttpAuth::password, 0, 0, "admin: HTTP basic password (or password_env)", true},
      {"viewer_token", &HttpAuth::viewer_token, 0, 0,
       "viewer (dashboard, live, stats, events; not /api/config nor detection on/off): bearer token", true},
      {"viewer_user", &HttpAuth::viewer_user, 0, 0, "viewer: HTTP basic user"},
      {"viewer_password", &HttpAuth::viewer_password, 0, 0, "viewer: HTTP basic password", true}};
  return f;
}

const std::vector<Field<StorageConfig>>& storage_fields() {
  static const std::vector<Field<StorageConfig>> f = {
      {"retention_days", &StorageConfig::retention_days, 0, 36500,
       "history (events, compliance) older than this many days is removed, with its pictures (0: kept)"},
      {"snapshot_days", &StorageConfig::snapshot_days, 0, 36500,
       "face snapshots and alert pictures older than this many days are removed; their events stay (0: kept)"},
      {"max_disk_mb", &StorageConfig::max_disk_mb, 0, 10000000,
       "the oldest pictures go while they take more (0: no cap)"},
      {"snapshots", &StorageConfig::snapshots, 0, 0, "keep a JPEG of each face track's best frame"}};
  return f;
}

const std::vector<Field<ClipConfig>>& clip_fields() {
  static const std::vector<Field<ClipConfig>> f = {
      {"enabled", &ClipConfig::enabled, 0, 0,
       "an MP4 around each alert of a face or compliance rule (not with privacy none); kept as snapshots are"},
      {"before_s", &ClipConfig::before_s, 0, 60, "seconds before the alert"},
      {"after_s", &ClipConfig::after_s, 0, 60, "seconds after the alert (the clip is ready then)"},
      {"fps", &ClipConfig::fps, 1, 30, "frames per second kept and shown"},
      {"width", &ClipConfig::width, 64, 4096, "wider frames are scaled down to this width"},
      {"unmasked_tracks", &ClipConfig::unmasked_tracks, 0, 0,
       "also a clip around each face track's first verdict without a mask (on every camera), linked to its "
       "event when the track ends"}};
  return f;
}

const std::vector<Field<MqttConfig>>& mqtt_fields() {
  static const std::vector<Field<MqttConfig>> f = {
      {"enabled", &MqttConfig::enabled, 0, 0, "on by default when the mqtt section is there"},
      {"host", &MqttConfig::host, 0, 0, "broker address"},
      {"port", &MqttConfig::port, 1, 65535, "broker port"},
      {"user", &MqttConfig::user, 0, 0, "broker user"},
      {"password", &MqttConfig::password, 0, 0, "broker password (or password_env)", true},
      {"client_id", &MqttConfig::client_id, 0, 0, "this instance's id (no '/', '+', '#')"},
      {"tls", &MqttConfig::tls, 0, 0, "connect with TLS"},
      {"compliance_interval_s", &MqttConfig::compliance_interval_s, 1, 86400,
       "today's compliance is published this often"},
      {"stats_interval_s", &MqttConfig::stats_interval_s, 1, 86400, "stats are published this often"},
      {"buffer_messages", &MqttConfig::buffer_messages, 0, 10000000,
       "messages held while the broker is down; the oldest go beyond"},
      {"discovery", &MqttConfig::discovery, 0, 0, "Home Assistant discovery: three sensors per camera"},
      {"discovery_prefix", &MqttConfig::discovery_prefix, 0, 0, "Home Assistant's discovery topic prefix"}};
  return f;
}

const std::vector<Field<AlertRule>>& alert_fields() {
  static const std::vector<Field<AlertRule>> f = {
      {"seconds", &AlertRule::seconds, 0, 86400,
       "unmasked_face: without a mask this long; camera_offline: down this long"},
      {"below", &AlertRule::below, 0, 1, "low_compliance: share with a mask under this..."},
      {"window_minutes", &AlertRule::window_minutes, 1, 1440, "...over this window"},
      {"min_faces", &AlertRule::min_faces, 1, 1000000, "low_compliance: at least this many faces in the window"},
      {"cooldown_s", &AlertRule::cooldown_s, 0, 864000, "the rule fires at most once this often per camera"},
      {"mqtt", &AlertRule::mqtt, 0, 0, "publish on PREFIX/alerts (mqtt.topic_prefix)"},
      {"sound", &AlertRule::sound, 0, 0, "`maskwatch run` only"}};
  return f;
}

}  // namespace maskwatch
