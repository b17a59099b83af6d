#include "serve/config.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <opencv2/imgproc.hpp>
#include <regex>
#include <set>

#include "serve/config_fields.h"
#include "serve/config_reader.h"
#include "serve/webhook.h"
#include "util/error.h"
#include "util/files.h"
#include "util/paths.h"
#include "util/threads.h"
#include "vision/face_detector.h"
#include "vision/face_stage_settings.h"
#include "vision/source.h"

namespace maskwatch {
namespace {

// An MQTT topic filter a broker accepts: levels split by '/', '+' only as a whole level, '#'
// only as the whole last level (MQTT 3.1.1, 4.7.1). A bad one makes the broker drop the
// session again and again.
bool valid_topic_filter(const std::string& filter) {
  if (filter.empty()) return false;
  size_t start = 0;
  while (true) {
    const size_t end = filter.find('/', start);
    const std::string level = filter.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (level.find_first_of("+#") != std::string::npos && level != "+" && level != "#") return false;
    if (level == "#" && end != std::string::npos) return false;
    if (end == std::string::npos) return true;
    start = end + 1;
  }
}

void read_detector(MapReader& parent, const std::string& key, DetectorSettings& d, const std::filesystem::path& base,
                   bool global) {
  MapReader r(parent.child(key), parent.where() + "." + key, parent.file());
  if (const YAML::Node w = r.child("workers"); w && !w.IsNull()) {
    if (global)
      r.get_range("workers", d.workers, 1, 4 * resolve_threads(0));  // unset: 0, one per core
    else
      r.fail(w,
           fmt::format("{}.workers: inference workers serve every camera; set them once, under the top-level detector:",
                       r.where()));
  }
  std::string face_model;
  r.get("face_model", face_model);
  const auto is_name = [&] {
    for (const auto& n : face_model_names())
      if (face_model == n.name) return true;
    return false;
  };
  // A word that is no model name was read as a file name: "face_model /etc/nosuch not found",
  // without a line or the names there are.
  if (!face_model.empty() && !is_name() && face_model.find('/') == std::string::npos &&
      lower_extension(face_model) != ".onnx") {
    r.fail(r.child("face_model"), fmt::format("{}.face_model: {} is no face model name ({}) nor an .onnx file",
                                              r.where(), face_model, face_model_name_list()));
  }
  if (!face_model.empty())
    d.face_model = is_name() ? face_model : resolve(expand(face_model, r, r.child("face_model")), base);
  read_fields(r, d, detector_fields());
  r.finish();
}

void read_tracker(MapReader& parent, TrackerOptions& t) {
  MapReader r(parent.child("tracker"), parent.where() + ".tracker", parent.file());
  read_fields(r, t, tracker_fields());
  r.finish();
}

// privacy: {faces: full | blurred | none}
void read_privacy(MapReader& parent, FacePrivacy& out) {
  const YAML::Node node = parent.child("privacy");
  MapReader r(node, parent.where() == "config" ? "privacy" : parent.where() + ".privacy", parent.file());
  std::string faces;
  r.get("faces", faces);
  // Given but empty (`faces:` or `faces: ''`) is a mistake, not the default.
  if (node && node.IsMap()) {
    const YAML::Node given = static_cast<const YAML::Node&>(node)["faces"];
    if (given && (given.IsNull() || (given.IsScalar() && faces.empty())))
      r.fail(given, fmt::format("{}.faces must be full, blurred or none, not empty", r.where()));
  }
  if (!faces.empty()) {
    const auto p = parse_privacy(faces);
    if (!p) r.fail(r.child("faces"), fmt::format("{}.faces must be full, blurred or none, not '{}'", r.where(), faces));
    out = *p;
  }
  r.finish();
}

// Keys a camera (or the camera defaults) may set.
void read_camera_keys(MapReader& r, CameraConfig& c, const std::filesystem::path& base) {
  std::string source;
  r.get("source", source);
  if (!source.empty()) c.source = resolve_source(expand(source, r, r.child("source")), base);
  remember_url_secret(c.source);  // never shown again, in logs, /api/config or status details
  read_fields(r, c, camera_fields());
  read_detector(r, "detector", c.detector, base, false);
  read_tracker(r, c.tracker);
  MapReader m(r.child("motion"), r.where() + ".motion", r.file());
  read_fields(m, c.motion, motion_fields());
  m.finish();
  read_privacy(r, c.privacy);
}

bool valid_camera_name(const std::string& s) {
  static const std::regex ok("[A-Za-z0-9][A-Za-z0-9_-]{0,63}");
  return std::regex_match(s, ok);
}

// zones: {<name>: {type: include | exclude, points: [[x, y], ...]}}, frame-relative 0..1.
void read_zones(MapReader& cam, std::vector<Zone>& out) {
  const YAML::Node node = cam.child("zones");
  if (!node || node.IsNull()) return;
  const std::string where = cam.where() + ".zones";
  MapReader zones(node, where, cam.file());  // a zone named twice is an error
  for (const auto& kv : node) {
    Zone z;
    z.name = kv.first.as<std::string>();
    if (!valid_camera_name(z.name))
      zones.fail(kv.first, fmt::format("{}: zone name '{}': up to 64 letters, digits, '_' and '-' (it appears in URLs)",
                                       where, z.name));
    const std::string at = where + "." + z.name;
    if (!kv.second.IsMap()) zones.fail(kv.first, fmt::format("{}: give {{type: include|exclude, points: [[x, y], ...]}}", at));
    MapReader r(kv.second, at, cam.file());
    std::string type = "include";
    r.get("type", type);
    if (type != "include" && type != "exclude")
      r.fail(r.child("type"), fmt::format("{}.type must be include or exclude, not '{}'", at, type));
    z.include = type == "include";
    const YAML::Node points = r.child("points");
    const auto bad_points = [&](const YAML::Node& n) {
      r.fail(n ? n : kv.second, fmt::format("{}.points: give at least three [x, y] corners, each between 0 and 1 "
                                            "(a share of the frame's width and height)",
                                            at));
    };
    if (!points || !points.IsSequence() || points.size() < 3) bad_points(points);
    for (const auto& p : points) {
      if (!p.IsSequence() || p.size() != 2 || !p[0].IsScalar() || !p[1].IsScalar()) bad_points(p);
      float x = -1, y = -1;
      try {
        x = p[0].as<float>(), y = p[1].as<float>();
      } catch (const YAML::Exception&) {
        bad_points(p);
      }
      if (!(x >= 0 && x <= 1 && y >= 0 && y <= 1)) bad_points(p);
      z.points.emplace_back(x, y);
    }
    if (std::abs(cv::contourArea(z.points)) < 1e-4)
      r.fail(points, fmt::format("{}.points enclose no area (corners on one line, or a polygon that crosses "
                                 "itself evenly)",
                                 at));
    r.finish();
    out.push_back(std::move(z));
  }
}

void read_alerts(MapReader& root, ServeConfig& cfg) {
  const YAML::Node list = root.child("alerts");
  if (!list || list.IsNull()) return;
  if (!list.IsSequence()) root.fail(list, "alerts must be a list of rules");
  int index = 0;
  for (const auto& node : list) {
    ++index;
    MapReader r(node, fmt::format("alerts[{}]", index), root.file());
    AlertRule a;
    r.get("name", a.name);
    if (a.name.empty()) a.name = fmt::format("rule-{}", index);
    r.get("kind", a.kind);
    static const std::set<std::string> kinds = {"unmasked_face", "low_compliance", "camera_offline"};
    if (!kinds.count(a.kind))
      r.fail(node, fmt::format("{}: kind must be unmasked_face, low_compliance or camera_offline", r.where()));
    r.get_list("cameras", a.cameras);
    // A key of another kind would be silently ignored: a rule that does not do what it says.
    const bool compliance = a.kind == "low_compliance";
    for (const char* key : {"below", "window_minutes", "min_faces"})
      if (!compliance && node[key]) r.fail(node[key], fmt::format("{}.{}: only for kind low_compliance", r.where(), key));
    if (compliance && node["seconds"])
      r.fail(node["seconds"], fmt::format("{}.seconds: not for kind low_compliance (it uses window_minutes)", r.where()));
    for (const auto& other : cfg.alerts)
      if (other.name == a.name)
        r.fail(r.child("name"), fmt::format("{}: a second rule named '{}' (names tell alerts apart)", r.where(), a.name));
    read_fields(r, a, alert_fields());
    r.get_list("hours", a.hours);
    for (int h : a.hours)
      if (h < 0 || h > 23) r.fail(r.child("hours"), fmt::format("{}.hours: {} is not an hour (0-23)", r.where(), h));
    r.get_list("weekdays", a.weekdays);
    for (int d : a.weekdays)
      if (d < 0 || d > 6)
        r.fail(r.child("weekdays"), fmt::format("{}.weekdays: {} is not a weekday (0 = Sunday .. 6)", r.where(), d));
    r.get("webhook", a.webhook);
    a.webhook = expand(a.webhook, r, r.child("webhook"));
    if (!a.webhook.empty()) try {
        split_url(a.webhook);  // the sender's own check, at load time
      } catch (const Error& e) {
        r.fail(r.child("webhook"), fmt::format("{}.webhook: {}", r.where(), e.what()));
      }
    r.finish();
    for (const auto& cam : a.cameras)
      if (!cfg.camera(cam)) r.fail(r.child("cameras"), fmt::format("{}: no camera named '{}'", r.where(), cam));
    cfg.alerts.push_back(a);
  }
}

void read_http(MapReader& root, ServeConfig& cfg) {
  const std::string& file = root.file();
  MapReader r(root.child("http"), "http", file);
  read_fields(r, cfg.http, http_fields());
  if (r.child("listen").IsScalar() && cfg.http.listen.empty())
    r.fail(r.child("listen"), "http.listen: empty (127.0.0.1: this machine only, 0.0.0.0: every interface)");
  else if (!is_address_or_host_name(cfg.http.listen))  // (config check had passed what serve could not bind)
    r.fail(r.child("listen"), fmt::format("http.listen: '{}' is not an IP address or a host name (127.0.0.1: this "
                                          "machine only, 0.0.0.0: every interface)",
                                          cfg.http.listen));
  MapReader a(r.child("auth"), "http.auth", file);
  read_fields(a, cfg.http.auth, auth_fields());
  a.finish();
  if (!cfg.http.auth.user.empty() && cfg.http.auth.password.empty())
    r.fail(r.child("auth"), "http.auth: a user needs a password (or password_env)");
  const auto& au = cfg.http.auth;
  if (!au.viewer_user.empty() && au.viewer_password.empty())
    r.fail(r.child("auth"), "http.auth: a viewer_user needs a viewer_password (or viewer_password_env)");
  if (au.user.empty() && !au.password.empty())
    r.fail(r.child("auth"), "http.auth: a password needs a user");
  if (au.viewer_user.empty() && !au.viewer_password.empty())
    r.fail(r.child("auth"), "http.auth: a viewer_password needs a viewer_user");
  if (!au.user.empty() && au.user == au.viewer_user)
    r.fail(r.child("auth"), "http.auth: viewer_user must differ from the admin user");
  for (const auto* token : {&au.token, &au.viewer_token})
    if (!token->empty() && (std::isspace(static_cast<unsigned char>(token->front())) ||
                            std::isspace(static_cast<unsigned char>(token->back()))))
      r.fail(r.child("auth"), "http.auth: a token must not begin or end with a space (it could not be sent)");
  if (cfg.http.auth.has_viewer() && cfg.http.auth.token.empty() && cfg.http.auth.user.empty())
    r.fail(r.child("auth"), "http.auth: viewer credentials need admin ones too (token or user), or nobody could "
                            "change anything");
  if (!cfg.http.auth.token.empty() && cfg.http.auth.token == cfg.http.auth.viewer_token)
    r.fail(r.child("auth"), "http.auth: viewer_token must differ from the admin token");
  r.finish();
}

void read_storage(MapReader& root, ServeConfig& cfg, const std::filesystem::path& base, const YAML::Node& doc) {
  const std::string& file = root.file();
  MapReader r(root.child("storage"), "storage", file);
  std::string dir;
  r.get("dir", dir);
  if (r.child("dir").IsScalar() && dir.empty()) r.fail(r.child("dir"), "storage.dir: empty (leave the key out for the default)");
  if (!dir.empty()) cfg.storage.dir = dir, cfg.storage.dir_in_file = true;
  cfg.storage.dir = resolve(expand(cfg.storage.dir, r, r.child("dir")), base);
  std::error_code ec;
  if (std::filesystem::exists(cfg.storage.dir, ec) && !std::filesystem::is_directory(cfg.storage.dir, ec))
    r.fail(r.child("dir") ? r.child("dir") : doc,
           fmt::format("storage.dir: {} is a file, not a folder", cfg.storage.dir));
  // A folder that serve could not create (under a file) passed `config check`, and the unit's
  // check was there to stop exactly that before a restart loop.
  for (std::filesystem::path up = std::filesystem::path(cfg.storage.dir).parent_path(); !up.empty();
       up = up.parent_path()) {
    if (!std::filesystem::exists(up, ec)) continue;
    if (!std::filesystem::is_directory(up, ec))
      r.fail(r.child("dir") ? r.child("dir") : doc,
             fmt::format("storage.dir: {} cannot be created: {} is a file", cfg.storage.dir, up.string()));
    break;
  }
  read_fields(r, cfg.storage, storage_fields());
  r.finish();
}

void read_clips(MapReader& root, ServeConfig& cfg) {
  const std::string& file = root.file();
  MapReader r(root.child("clips"), "clips", file);
  read_fields(r, cfg.clips, clip_fields());
  r.finish();
  if (cfg.clips.before_s + cfg.clips.after_s <= 0)
    r.fail(r.child("before_s") ? r.child("before_s") : root.child("clips"),
           "clips: before_s + after_s must be more than 0 s (a clip needs a length)");
}

void read_mqtt(MapReader& root, ServeConfig& cfg) {
  const std::string& file = root.file();
  MapReader r(root.child("mqtt"), "mqtt", file);
  cfg.mqtt.enabled = static_cast<bool>(root.child("mqtt")) && !root.child("mqtt").IsNull();
  read_fields(r, cfg.mqtt, mqtt_fields());
  r.get("topic_prefix", cfg.mqtt.topic_prefix);
  if (cfg.mqtt.topic_prefix.find_first_of("+#") != std::string::npos)
    r.fail(r.child("topic_prefix"), "mqtt.topic_prefix must be free of '+' and '#' (topics are published there)");
  if (cfg.mqtt.discovery_prefix.empty() || cfg.mqtt.discovery_prefix.find_first_of("+#") != std::string::npos)
    r.fail(r.child("discovery_prefix"), "mqtt.discovery_prefix must be non-empty and free of '+' and '#'");
  r.finish();
  if (cfg.mqtt.client_id.empty() || cfg.mqtt.client_id.find_first_of("/+#") != std::string::npos)
    r.fail(root.child("mqtt"), "mqtt.client_id must be non-empty and free of '/', '+' and '#'");
}

void read_fleet(MapReader& root, ServeConfig& cfg) {
  const std::string& file = root.file();
  MapReader r(root.child("fleet"), "fleet", file);
  r.get_list("subscribe", cfg.fleet.subscribe);
  for (const auto& filter : cfg.fleet.subscribe)
    if (!valid_topic_filter(filter))
      r.fail(r.child("subscribe"), fmt::format("fleet.subscribe: '{}' is not an MQTT topic filter ('+' and '#' stand "
                                               "for whole levels, '#' only last, e.g. maskwatch/+/# )",
                                               filter));
  r.finish();
  if (!cfg.fleet.subscribe.empty() && !cfg.mqtt.enabled)
    r.fail(root.child("fleet"), "fleet.subscribe needs the mqtt section (the broker the other instances publish to)");
}

// The camera defaults (top-level detector, tracker and privacy, then `defaults:`), and each
// camera over them.
void read_cameras(MapReader& root, ServeConfig& cfg, const std::filesystem::path& base, const YAML::Node& doc) {
  const std::string& file = root.file();
  CameraConfig defaults;
  defaults.detector = cfg.detector;
  defaults.tracker = cfg.tracker;
  read_privacy(root, defaults.privacy);
  {
    MapReader r(root.child("defaults"), "defaults", file);
    if (const auto s = r.child("source"); s && !s.IsNull())
      r.fail(s, "defaults.source: each camera names its own source");
    read_camera_keys(r, defaults, base);
    r.finish();
  }
  const YAML::Node cams = root.child("cameras");
  if (!cams || cams.IsNull() || !cams.IsMap() || cams.size() == 0)
    root.fail(cams ? cams : doc, "cameras: give at least one camera as `cameras: {<name>: {source: ...}}`");
  MapReader(cams, "cameras", file);  // a camera named twice is an error
  for (const auto& kv : cams) {
    const auto name = kv.first.as<std::string>();
    if (!valid_camera_name(name))
      root.fail(kv.first, fmt::format("camera name '{}': use letters, digits, '_' and '-' (it appears in URLs)", name));
    for (const char* reserved : {"events", "stats", "config", "version", "compliance"})
      if (name == reserved) root.fail(kv.first, fmt::format("camera name '{}' is reserved by the HTTP API", name));
    CameraConfig c = defaults;
    c.name = name;
    MapReader r(kv.second, "cameras." + name, file);
    read_camera_keys(r, c, base);
    read_zones(r, c.zones);
    r.finish();
    if (c.source.empty()) r.fail(kv.second ? kv.second : kv.first, fmt::format("cameras.{}: no source", name));
    cfg.cameras.push_back(c);
  }
}

}  // namespace

std::string ServeConfig::model_path() const { return model.empty() ? default_classifier_path().string() : model; }

const CameraConfig* ServeConfig::camera(const std::string& name) const {
  for (const auto& c : cameras)
    if (c.name == name) return &c;
  return nullptr;
}

ServeConfig parse_serve_config(const std::string& text, const std::filesystem::path& origin) {
  YAML::Node doc;
  try {
    const auto docs = YAML::LoadAll(text);
    if (docs.size() > 1)
      throw Error(fmt::format("{}: {} YAML documents ('---'); a config is one", origin.string(), docs.size()));
    doc = docs.empty() ? YAML::Node() : docs.front();
  } catch (const YAML::Exception& e) {
    throw Error(fmt::format("{}:{}: not valid YAML ({})", origin.string(), e.mark.line + 1, e.msg));
  }
  const std::string file = origin.string();
  if (!doc || doc.IsNull()) throw Error(fmt::format("{}: the file is empty", file));
  ServeConfig cfg;
  cfg.file = origin;
  const auto base = origin.parent_path();
  MapReader root(doc, "config", file);
  std::string model;
  root.get("model", model);
  if (!model.empty()) {
    cfg.model = resolve(expand(model, root, root.child("model")), base);
    cfg.model_line = root.child("model").Mark().line + 1;
  }
  read_detector(root, "detector", cfg.detector, base, true);
  read_tracker(root, cfg.tracker);
  read_http(root, cfg);
  read_storage(root, cfg, base, doc);
  read_clips(root, cfg);
  read_mqtt(root, cfg);
  read_fleet(root, cfg);
  read_cameras(root, cfg, base, doc);
  read_alerts(root, cfg);
  root.finish();
  return cfg;
}

ServeConfig load_serve_config(const std::filesystem::path& file) {
  // A FIFO or a device would block the reader (a reload holds up the shutdown) or never end.
  std::error_code ec;
  if (std::filesystem::exists(file, ec) && !std::filesystem::is_regular_file(file, ec))
    throw Error(fmt::format("config file {}: not a regular file", file.string()));
  if (std::filesystem::exists(file, ec) && std::filesystem::file_size(file, ec) > (8u << 20))
    throw Error(fmt::format("config file {}: larger than 8 MiB, not a config", file.string()));
  return parse_serve_config(read_file_text(file, "config file"), file);
}

namespace {
nlohmann::json detector_json(const DetectorSettings& d, bool redact) {
  auto j = fields_json(d, detector_fields(), redact);
  j["face_model"] = d.face_model.empty() ? std::string(default_face_model_name()) + " (default)" : d.face_model;
  return j;
}
}  // namespace

nlohmann::json camera_json(const CameraConfig& c, bool redact) {
  auto j = fields_json(c, camera_fields(), redact);
  j["source"] = redact ? redact_url(c.source) : c.source;
  j["detector"] = detector_json(c.detector, redact);
  j["tracker"] = fields_json(c.tracker, tracker_fields(), redact);
  j["motion"] = fields_json(c.motion, motion_fields(), redact);
  j["privacy"] = {{"faces", privacy_name(c.privacy)}};
  if (!c.zones.empty()) {
    nlohmann::json zones = nlohmann::json::object();
    for (const auto& z : c.zones) {
      nlohmann::json pts = nlohmann::json::array();
      for (const auto& p : z.points) pts.push_back({p.x, p.y});
      zones[z.name] = {{"type", z.include ? "include" : "exclude"}, {"points", pts}};
    }
    j["zones"] = zones;
  }
  return j;
}

nlohmann::json ServeConfig::to_json(bool redact) const {
  nlohmann::json cams = nlohmann::json::object();
  for (const auto& c : cameras) cams[c.name] = camera_json(c, redact);
  nlohmann::json alert_list = nlohmann::json::array();
  for (const auto& a : alerts) {
    auto j = fields_json(a, alert_fields(), redact);
    j["name"] = a.name;
    j["kind"] = a.kind;
    j["cameras"] = a.cameras;
    j["hours"] = a.hours;
    j["weekdays"] = a.weekdays;
    j["webhook"] = redact ? hide_url_path(a.webhook) : a.webhook;
    alert_list.push_back(j);
  }
  auto d = detector_json(detector, redact);
  d["workers"] = detector.workers ? nlohmann::json(detector.workers) : nlohmann::json("auto (one per core)");
  auto h = fields_json(http, http_fields(), redact);
  h["auth"] = fields_json(http.auth, auth_fields(), redact);
  auto st = fields_json(storage, storage_fields(), redact);
  st["dir"] = storage.dir;
  auto m = fields_json(mqtt, mqtt_fields(), redact);
  m["topic_prefix"] = mqtt.prefix();
  return {{"file", file.string()},
          {"model", model_path()},
          {"detector", d},
          {"tracker", fields_json(tracker, tracker_fields(), redact)},
          {"http", h},
          {"storage", st},
          {"clips", fields_json(clips, clip_fields(), redact)},
          {"mqtt", m},
          {"alerts", alert_list},
          {"fleet", {{"subscribe", fleet.subscribe}}},
          {"cameras", cams}};
}

bool alert_has_picture(const AlertRule& rule) {
  return rule.kind == "unmasked_face" || rule.kind == "low_compliance";
}

std::vector<ConfigKey> config_keys() {
  std::vector<ConfigKey> out;
  const auto by_hand = [&](std::string key, std::string type, std::string def, std::string help) {
    out.push_back({std::move(key), std::move(type), std::move(def), std::move(help), false});
  };
  by_hand("model", "path", "\"\" (the shipped ensemble)", "the classifier (model.onnx, or an ensemble's .json: one forward per member for the faces its cascade does not spare)");
  by_hand("detector.face_model", "name or path", fmt::format("\"{}\"", default_face_model_name()),
          "face detector: a name (maskwatch detect --help) or an .onnx file");
  by_hand("detector.workers", "1 .. 4 x cores", "one per core, at most one per camera",
          "inference workers for all cameras (top level only)");
  document(out, "detector.", detector_fields());
  document(out, "tracker.", tracker_fields());
  document(out, "http.", http_fields());
  document(out, "http.auth.", auth_fields());
  by_hand("privacy.faces", "full, blurred, none", "\"blurred\"",
          "what of a face may leave the process or be stored: blurred pixelates every face box (grown by "
          "the crop margin) before encoding; none keeps no face pixels (no snapshots); per camera too");
  by_hand("storage.dir", "path", "\"maskwatch-data\"", "history database and snapshots");
  document(out, "storage.", storage_fields());
  document(out, "clips.", clip_fields());
  document(out, "mqtt.", mqtt_fields());
  by_hand("mqtt.topic_prefix", "text", "\"maskwatch/<client_id>\"", "topics are PREFIX/CAMERA/...");
  by_hand("fleet.subscribe", "list of topic filters", "[]", "other instances to show (needs mqtt)");
  by_hand("cameras.<name>.source", "text", "(required)", "webcam index, /dev/videoN, file, folder, rtsp/http URL, FIFO");
  document(out, "cameras.<name>.", camera_fields());
  document(out, "cameras.<name>.motion.", motion_fields());
  by_hand("cameras.<name>.privacy.faces", "full, blurred, none", "privacy.faces", "as privacy: above, for this camera");
  by_hand("cameras.<name>.zones.<zone>.type", "include, exclude", "\"include\"",
          "include: faces count only with their box centre in an include zone (the event carries its name); "
          "exclude: faces there never count (a poster, a screen)");
  by_hand("cameras.<name>.zones.<zone>.points", "list of [x, y]", "(required)",
          "three or more corners, shares of the frame's width and height (0..1); not in defaults");
  out.push_back({"cameras.<name>.detector, .tracker", "", "", "as detector: and tracker: above, for this camera", false});
  out.push_back({"defaults.*", "", "", "any key of a camera but source: the value every camera starts from", false});
  by_hand("alerts[].kind", "unmasked_face, low_compliance, camera_offline", "(required)", "what the rule watches");
  by_hand("alerts[].name, cameras, hours, weekdays, webhook", "", "", "rule name; cameras (empty: all); local hours "
          "0-23 and weekdays 0-6 (empty: always); an http(s) URL to POST to");
  document(out, "alerts[].", alert_fields());
  return out;
}

}  // namespace maskwatch
