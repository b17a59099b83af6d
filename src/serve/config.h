// The `maskwatch serve` configuration: one YAML file with global defaults (model, detector,
// tracker, HTTP, storage, camera defaults) that each camera may override. Unknown keys and
// wrong types are errors naming the file, line and key, so a typo never silently falls back
// to a default. Relative paths are relative to the config file's folder; ${NAME} expands an
// environment variable (${MASKWATCH_SHARED} defaults to the shared data folder configured at
// build time, so the shipped example runs on a fresh machine).
#pragma once
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "util/log_text.h"  // redact_url
#include "vision/face_detector.h"
#include "vision/motion_gate.h"
#include "vision/pipeline.h"
#include "vision/privacy.h"
#include "vision/tracker.h"
#include "vision/zones.h"

namespace maskwatch {

// The face stage of a camera. Defaults are those of `run` and `detect`, taken from the
// options they use, so the two never drift apart.
struct DetectorSettings {
  std::string face_model;  // a face model name or file; empty = the default (vision/face_detector.h)
  float score_threshold = FaceDetectorOptions{}.score_threshold;
  int detect_width = FaceDetectorOptions{}.detect_width;
  double margin = PipelineOptions{}.crop_margin;
  double reclassify_after_s = ClassifyScheduleOptions{}.refresh_s;  // a steady face again after this (0: every frame)
  // Inference workers (top-level detector: only): 0 = one per core, at most one per camera.
  int workers = 0;
  // The settings above that the one shared detector is built with at start (their JSON
  // keys): a reload does not apply them, a restart does.
  static constexpr const char* kSetAtStart[] = {"face_model", "detect_width", "workers"};
};

struct CameraConfig {
  std::string name;
  std::string source;  // webcam index, /dev/videoN, file, rtsp/http URL
  bool enabled = true;
  int width = 640, height = 480;  // requested camera resolution
  double fps_limit = 10;          // frames processed per second at most
  bool loop = false;              // video files: start again at the end (demo, tests)
  bool mirror = false;
  double reconnect_max_s = 30;  // longest wait between reconnect attempts
  DetectorSettings detector;
  TrackerOptions tracker;
  MotionOptions motion;  // motion gating of the face detector (vision/motion_gate.h)
  FacePrivacy privacy = FacePrivacy::Blurred;  // what of a face leaves the process (vision/privacy.h)
  std::vector<Zone> zones;  // where faces count (vision/zones.h); per camera only, not in defaults
};

// Two roles: admin (token or user/password: everything) and viewer (viewer_token or
// viewer_user/viewer_password: dashboard, live view, stats, events, history; not the config
// nor switching detection). No credentials at all: everyone is admin (listen on 127.0.0.1).
struct HttpAuth {
  std::string token;           // admin: bearer token
  std::string user, password;  // admin: basic auth
  std::string viewer_token;
  std::string viewer_user, viewer_password;
  bool enabled() const { return !token.empty() || !user.empty() || has_viewer(); }
  bool has_viewer() const { return !viewer_token.empty() || !viewer_user.empty(); }
};

struct HttpConfig {
  std::string listen = "127.0.0.1";
  int port = 8080;
  int max_stream_clients = 8;  // MJPEG viewers of each camera (not of the server); the next gets 503
  // Every open stream (MJPEG viewer or event listener) holds one HTTP thread for its whole
  // life: at most this many over all cameras, so that the pool always has threads left.
  int max_streams = 32;
  int max_connections_per_client = 16;  // open connections per remote address; the next gets 503
  // A connection must send a complete request (head and body) within this long of
  // connecting or of its previous answer; slower ones (slowloris) are closed.
  double request_timeout_s = 5;
  int stream_fps = 10;  // MJPEG frames per second at most
  int jpeg_quality = 80;
  HttpAuth auth;
};

struct StorageConfig {
  std::string dir = "maskwatch-data";
  bool dir_in_file = false;  // the file names the folder (storage.dir), rather than the default
  int retention_days = 30;  // history: events and compliance (0: kept)
  int snapshot_days = 7;    // pictures of faces: short by default, as data protection authorities ask (0: kept)
  int max_disk_mb = 2048;
  bool snapshots = true;
};

// Event clips (serve/clip_recorder.h): an MP4 around each alert of a face or compliance rule,
// on the cameras such a rule watches; not for privacy `none`. Under storage.snapshot_days and
// storage.max_disk_mb like the snapshots.
struct ClipConfig {
  bool enabled = true;
  double before_s = 5;  // of the alert
  double after_s = 5;
  double fps = 5;    // frames kept per second
  int width = 640;   // wider frames are scaled down to this
  bool unmasked_tracks = false;  // also a clip around each track's first verdict without a mask
};

struct MqttConfig {
  bool enabled = false;
  std::string host = "127.0.0.1";
  int port = 1883;
  std::string user, password, client_id = "maskwatch", topic_prefix;  // prefix default: maskwatch/<client_id>
  bool tls = false;
  int compliance_interval_s = 60;
  int stats_interval_s = 60;
  int buffer_messages = 1000;  // held while the broker is down; oldest dropped beyond
  // Home Assistant MQTT discovery: retained sensor configs under <discovery_prefix>/sensor/.
  bool discovery = true;
  std::string discovery_prefix = "homeassistant";
  std::string prefix() const { return topic_prefix.empty() ? "maskwatch/" + client_id : topic_prefix; }
};

struct AlertRule {
  std::string name;
  std::string kind;                  // "unmasked_face", "low_compliance", "camera_offline"
  std::vector<std::string> cameras;  // empty = all
  double seconds = 3;                // unmasked_face: visible this long; camera_offline: down this long
  double below = 0.8;                // low_compliance: share with mask under this...
  double window_minutes = 10;        // ...over this window
  int min_faces = 1;                 // low_compliance: at least this many faces in the window
  double cooldown_s = 300;
  std::vector<int> hours;     // allowed hours of the day (0-23); empty = always
  std::vector<int> weekdays;  // 0 = Sunday .. 6; empty = every day
  bool mqtt = true;
  std::string webhook;  // http(s) URL, optional
  bool sound = false;   // `maskwatch run` only
};

// Whether the rule's alerts come with a picture (snapshot and clip): face and compliance
// rules; a camera that went offline has none.
bool alert_has_picture(const AlertRule& rule);

struct FleetConfig {
  std::vector<std::string> subscribe;  // MQTT topic filters of other instances, e.g. maskwatch/+/#
};

struct ServeConfig {
  std::filesystem::path file;
  std::string model;  // model.onnx or an ensemble's .json; empty = the shipped ensemble
  // The classifier file serve loads: `model`, or the shipped default when the key is not given.
  std::string model_path() const;
  int model_line = 0;  // where `model:` is in the file (0: not given), for check_config_files
  DetectorSettings detector;
  TrackerOptions tracker;
  HttpConfig http;
  StorageConfig storage;
  ClipConfig clips;
  MqttConfig mqtt;
  std::vector<AlertRule> alerts;
  FleetConfig fleet;
  std::vector<CameraConfig> cameras;

  const CameraConfig* camera(const std::string& name) const;
  // The effective configuration; with `redact`, passwords, tokens and stream credentials
  // (the password of user:password@ in URLs) are replaced by "***".
  nlohmann::json to_json(bool redact) const;
};

// One documented key (`maskwatch config keys`, README): cameras.<name>.* may also be set
// under defaults:, and a camera's detector and tracker override the top-level ones.
struct ConfigKey {
  std::string key, type, default_value, help;
  bool secret = false;  // also <key>_env; shown as ***
};
std::vector<ConfigKey> config_keys();

// Throws Error("FILE:LINE: ...") for malformed YAML, unknown keys, wrong types or values.
ServeConfig load_serve_config(const std::filesystem::path& file);

// `serve --data DIR` replaces the file's storage.dir (the systemd unit passes /var/lib/maskwatch):
// the warning that says so where the file names another folder, else "".
std::string data_dir_override_warning(const StorageConfig& from_file, const std::filesystem::path& data_dir);
// An IPv4 or IPv6 address (fe80::1%eth0 too) or a host name (what http.listen may be).
bool is_address_or_host_name(const std::string& text);
// One line per camera whose source is a local file or folder that does not exist.
std::vector<std::string> missing_source_warnings(const ServeConfig& cfg);
// The warning for a server other machines can reach (http.listen not a loopback address) with
// no http.auth, where anyone on the network is admin; else "". `config check` and `serve` say it.
std::string open_without_login_warning(const HttpConfig& http);
// One line per camera under privacy `none` that an alert rule with a picture watches: its
// alerts keep no snapshot or clip there, which the dashboard shows as a missing picture.
std::vector<std::string> pictureless_camera_warnings(const ServeConfig& cfg);
// Every warning above, in that order: what `serve` says at start and on a reload, and `config check` prints.
std::vector<std::string> config_warnings(const ServeConfig& cfg);
// The files a config names exist: the model, and each face model given by name or path
// (what `serve` would fail on at start). Throws Error naming the file. For `config check`
// and reloads.
void check_config_files(const ServeConfig& cfg);
// One camera's settings as /api/config shows them (every key; also how a reconfiguration
// tells a changed camera from an unchanged one).
nlohmann::json camera_json(const CameraConfig& c, bool redact);
ServeConfig parse_serve_config(const std::string& yaml_text, const std::filesystem::path& origin);

}  // namespace maskwatch
