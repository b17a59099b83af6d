#include "serve/config.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <regex>
#include <set>

#include "serve/webhook.h"
#include "util/error.h"
#include "util/files.h"
#include "util/paths.h"
#include "util/threads.h"
#include "vision/face_detector.h"

namespace maskwatch {
namespace {

// Reads one YAML mapping: typed values by key, and an error for every key nobody asked for.
class MapReader {
 public:
  MapReader(const YAML::Node& node, std::string where, const std::string& file)
      : node_(node), where_(std::move(where)), file_(file) {
    if (node_ && !node_.IsNull() && !node_.IsMap())
      fail(node_, fmt::format("{} must be a mapping of keys to values", where_));
    check_unique_keys();
  }

  [[noreturn]] void fail(const YAML::Node& at, const std::string& what) const {
    throw Error(fmt::format("{}:{}: {}", file_, at.Mark().line + 1, what));
  }

  YAML::Node child(const std::string& key) {
    known_.insert(key);
    return node_ && node_.IsMap() ? node_[key] : YAML::Node();
  }

  template <class T>
  void get(const std::string& key, T& out) {
    const YAML::Node v = child(key);
    if (!v || v.IsNull()) return;
    if (!v.IsScalar()) fail(v, fmt::format("{}.{} must be a single value", where_, key));
    try {
      out = v.as<T>();
    } catch (const YAML::Exception&) {
      fail(v, fmt::format("{}.{}: '{}' is not {}", where_, key, v.Scalar(), type_name<T>()));
    }
    // YAML's .nan and .inf are numbers to yaml-cpp; NaN would pass every range check.
    if constexpr (std::is_floating_point_v<T>)
      if (!std::isfinite(out)) fail(v, fmt::format("{}.{}: '{}' is not a finite number", where_, key, v.Scalar()));
  }

  template <class T>
  void get_range(const std::string& key, T& out, T lo, T hi) {
    get(key, out);
    if (out < lo || out > hi) fail(child(key), fmt::format("{}.{} must be between {} and {}", where_, key, lo, hi));
  }

  template <class T>
  void get_list(const std::string& key, std::vector<T>& out) {
    const YAML::Node v = child(key);
    if (!v || v.IsNull()) return;
    if (v.IsScalar()) {
      out.clear();
      T one{};
      get(key, one);
      out.push_back(one);
      return;
    }
    if (!v.IsSequence()) fail(v, fmt::format("{}.{} must be a list", where_, key));
    out.clear();
    for (const auto& item : v) {
      try {
        out.push_back(item.as<T>());
      } catch (const YAML::Exception&) {
        fail(item, fmt::format("{}.{}: '{}' is not {}", where_, key, item.Scalar(), type_name<T>()));
      }
    }
  }

  void finish() const {
    if (!node_ || !node_.IsMap()) return;
    for (const auto& kv : node_) {
      const auto key = kv.first.as<std::string>();
      if (!known_.count(key)) {
        std::vector<std::string> names(known_.begin(), known_.end());
        fail(kv.first, fmt::format("unknown key '{}' in {} (known: {})", key, where_, fmt::join(names, ", ")));
      }
    }
  }

  const std::string& file() const { return file_; }
  const std::string& where() const { return where_; }

 private:
  // yaml-cpp keeps both entries of a repeated key (a lookup finds the first, iteration
  // sees both): a second `demo:` camera would silently make two cameras of one name.
  void check_unique_keys() const {
    if (!node_ || !node_.IsMap()) return;
    std::map<std::string, int> first_line;
    for (const auto& kv : node_) {
      const auto [it, fresh] = first_line.emplace(kv.first.Scalar(), kv.first.Mark().line + 1);
      if (!fresh)
        fail(kv.first, fmt::format("duplicate key '{}' in {} (first at line {})", it->first, where_, it->second));
    }
  }

  template <class T>
  static const char* type_name() {
    if constexpr (std::is_same_v<T, bool>)
      return "true or false";
    else if constexpr (std::is_integral_v<T>)
      return "a whole number";
    else if constexpr (std::is_floating_point_v<T>)
      return "a number";
    else
      return "text";
  }
  YAML::Node node_;
  std::string where_, file_;
  std::set<std::string> known_;
};

// ${NAME} -> the environment variable (MASKWATCH_SHARED defaults to the configured shared folder).
std::string expand(const std::string& s, const MapReader& r, const YAML::Node& at) {
  static const std::regex var(R"(\$\{([A-Za-z_][A-Za-z0-9_]*)\})");
  std::string out;
  auto begin = std::sregex_iterator(s.begin(), s.end(), var);
  size_t last = 0;
  for (auto it = begin; it != std::sregex_iterator(); ++it) {
    const std::string name = (*it)[1];
    const char* env = std::getenv(name.c_str());
    std::string value;
    if (env)
      value = env;
    else if (name == "MASKWATCH_SHARED")
      value = shared_data_dir().string();
    else
      r.fail(at, fmt::format("{}: environment variable {} is not set", r.where(), name));
    out += s.substr(last, static_cast<size_t>(it->position()) - last) + value;
    last = static_cast<size_t>(it->position() + it->length());
  }
  return out + s.substr(last);
}

// A path relative to the config file's folder (URLs and camera indexes stay as they are).
std::string resolve(const std::string& value, const std::filesystem::path& base) {
  if (value.empty() || value.find("://") != std::string::npos) return value;
  if (!value.empty() && value.find_first_not_of("0123456789") == std::string::npos) return value;  // webcam index
  std::filesystem::path p(value);
  return p.is_absolute() ? value : (base / p).lexically_normal().string();
}

// A secret given inline or through `<key>_env: VARIABLE`.
void read_secret(MapReader& r, const std::string& key, std::string& out) {
  r.get(key, out);
  std::string env;
  r.get(key + "_env", env);
  if (env.empty()) return;
  const char* v = std::getenv(env.c_str());
  if (!v)
    r.fail(r.child(key + "_env"), fmt::format("{}.{}_env: environment variable {} is not set", r.where(), key, env));
  out = v;
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
  if (!face_model.empty())
    d.face_model = is_name() ? face_model : resolve(expand(face_model, r, r.child("face_model")), base);
  r.get_range("score_threshold", d.score_threshold, 0.05f, 1.0f);
  r.get_range("detect_width", d.detect_width, 64, 4096);
  r.get_range("margin", d.margin, 0.0, 3.0);
  r.get_range("reclassify_after_s", d.reclassify_after_s, 0.0, 10.0);
  r.finish();
}

void read_tracker(MapReader& parent, TrackerOptions& t) {
  MapReader r(parent.child("tracker"), parent.where() + ".tracker", parent.file());
  r.get_range("tau_s", t.tau_s, 0.0, 10.0);
  r.get_range("enter", t.enter, 0.5, 1.0);
  r.get_range("uncertain_after_s", t.uncertain_after_s, 0.0, 60.0);
  r.get_range("max_missed_s", t.max_missed_s, 0.0, 60.0);
  r.get_range("iou_match", t.iou_match, 0.0, 1.0);
  r.finish();
}

// Keys a camera (or the camera defaults) may set.
void read_camera_keys(MapReader& r, CameraConfig& c, const std::filesystem::path& base) {
  std::string source;
  r.get("source", source);
  if (!source.empty()) c.source = resolve(expand(source, r, r.child("source")), base);
  r.get("enabled", c.enabled);
  r.get_range("width", c.width, 16, 8192);
  r.get_range("height", c.height, 16, 8192);
  r.get_range("fps_limit", c.fps_limit, 0.1, 240.0);
  r.get("loop", c.loop);
  r.get("mirror", c.mirror);
  r.get_range("reconnect_max_s", c.reconnect_max_s, 0.5, 3600.0);
  read_detector(r, "detector", c.detector, base, false);
  read_tracker(r, c.tracker);
  MapReader m(r.child("motion"), r.where() + ".motion", r.file());
  m.get("enabled", c.motion.enabled);
  m.get_range("threshold", c.motion.threshold, 1, 254);
  m.get_range("min_area", c.motion.min_area, 0.0001, 1.0);
  m.get_range("full_every_s", c.motion.full_every_s, 0.1, 60.0);
  m.finish();
}

bool valid_camera_name(const std::string& s) {
  static const std::regex ok("[A-Za-z0-9][A-Za-z0-9_-]{0,63}");
  return std::regex_match(s, ok);
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
    r.get_range("seconds", a.seconds, 0.0, 86400.0);
    r.get_range("below", a.below, 0.0, 1.0);
    r.get_range("window_minutes", a.window_minutes, 1.0, 1440.0);
    r.get_range("min_faces", a.min_faces, 1, 1000000);
    r.get_range("cooldown_s", a.cooldown_s, 0.0, 864000.0);
    r.get_list("hours", a.hours);
    for (int h : a.hours)
      if (h < 0 || h > 23) r.fail(r.child("hours"), fmt::format("{}.hours: {} is not an hour (0-23)", r.where(), h));
    r.get_list("weekdays", a.weekdays);
    for (int d : a.weekdays)
      if (d < 0 || d > 6)
        r.fail(r.child("weekdays"), fmt::format("{}.weekdays: {} is not a weekday (0 = Sunday .. 6)", r.where(), d));
    r.get("mqtt", a.mqtt);
    r.get("webhook", a.webhook);
    a.webhook = expand(a.webhook, r, r.child("webhook"));
    if (!a.webhook.empty()) try {
        split_url(a.webhook);  // the sender's own check, at load time
      } catch (const Error& e) {
        r.fail(r.child("webhook"), fmt::format("{}.webhook: {}", r.where(), e.what()));
      }
    r.get("sound", a.sound);
    r.finish();
    for (const auto& cam : a.cameras)
      if (!cfg.camera(cam)) r.fail(r.child("cameras"), fmt::format("{}: no camera named '{}'", r.where(), cam));
    cfg.alerts.push_back(a);
  }
}

}  // namespace

const CameraConfig* ServeConfig::camera(const std::string& name) const {
  for (const auto& c : cameras)
    if (c.name == name) return &c;
  return nullptr;
}

ServeConfig parse_serve_config(const std::string& text, const std::filesystem::path& origin) {
  YAML::Node doc;
  try {
    doc = YAML::Load(text);
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
  if (!model.empty()) cfg.model = resolve(expand(model, root, root.child("model")), base);
  read_detector(root, "detector", cfg.detector, base, true);
  read_tracker(root, cfg.tracker);
  {
    MapReader r(root.child("http"), "http", file);
    r.get("listen", cfg.http.listen);
    r.get_range("port", cfg.http.port, 0, 65535);
    r.get_range("max_stream_clients", cfg.http.max_stream_clients, 0, 1000);
    r.get_range("max_streams", cfg.http.max_streams, 0, 1000);
    r.get_range("max_connections_per_client", cfg.http.max_connections_per_client, 1, 10000);
    r.get_range("request_timeout_s", cfg.http.request_timeout_s, 0.5, 300.0);
    r.get_range("stream_fps", cfg.http.stream_fps, 1, 60);
    r.get_range("jpeg_quality", cfg.http.jpeg_quality, 10, 100);
    MapReader a(r.child("auth"), "http.auth", file);
    read_secret(a, "token", cfg.http.auth.token);
    a.get("user", cfg.http.auth.user);
    read_secret(a, "password", cfg.http.auth.password);
    a.finish();
    if (!cfg.http.auth.user.empty() && cfg.http.auth.password.empty())
      r.fail(r.child("auth"), "http.auth: a user needs a password (or password_env)");
    r.finish();
  }
  {
    MapReader r(root.child("storage"), "storage", file);
    std::string dir;
    r.get("dir", dir);
    if (!dir.empty()) cfg.storage.dir = dir;
    cfg.storage.dir = resolve(expand(cfg.storage.dir, r, r.child("dir")), base);
    std::error_code ec;
    if (std::filesystem::exists(cfg.storage.dir, ec) && !std::filesystem::is_directory(cfg.storage.dir, ec))
      r.fail(r.child("dir") ? r.child("dir") : doc,
             fmt::format("storage.dir: {} is a file, not a folder", cfg.storage.dir));
    r.get_range("retention_days", cfg.storage.retention_days, 0, 36500);
    r.get_range("max_disk_mb", cfg.storage.max_disk_mb, 0, 10000000);
    r.get("snapshots", cfg.storage.snapshots);
    r.finish();
  }
  {
    MapReader r(root.child("mqtt"), "mqtt", file);
    cfg.mqtt.enabled = static_cast<bool>(root.child("mqtt")) && !root.child("mqtt").IsNull();
    r.get("enabled", cfg.mqtt.enabled);
    r.get("host", cfg.mqtt.host);
    r.get_range("port", cfg.mqtt.port, 1, 65535);
    r.get("user", cfg.mqtt.user);
    read_secret(r, "password", cfg.mqtt.password);
    r.get("client_id", cfg.mqtt.client_id);
    r.get("topic_prefix", cfg.mqtt.topic_prefix);
    r.get("tls", cfg.mqtt.tls);
    r.get_range("compliance_interval_s", cfg.mqtt.compliance_interval_s, 1, 86400);
    r.get_range("stats_interval_s", cfg.mqtt.stats_interval_s, 1, 86400);
    r.get_range("buffer_messages", cfg.mqtt.buffer_messages, 0, 10000000);
    r.get("discovery", cfg.mqtt.discovery);
    r.get("discovery_prefix", cfg.mqtt.discovery_prefix);
    if (cfg.mqtt.discovery_prefix.empty() || cfg.mqtt.discovery_prefix.find_first_of("+#") != std::string::npos)
      r.fail(r.child("discovery_prefix"), "mqtt.discovery_prefix must be non-empty and free of '+' and '#'");
    r.finish();
    if (cfg.mqtt.client_id.empty() || cfg.mqtt.client_id.find_first_of("/+#") != std::string::npos)
      r.fail(root.child("mqtt"), "mqtt.client_id must be non-empty and free of '/', '+' and '#'");
  }
  {
    MapReader r(root.child("fleet"), "fleet", file);
    r.get_list("subscribe", cfg.fleet.subscribe);
    r.finish();
    if (!cfg.fleet.subscribe.empty() && !cfg.mqtt.enabled)
      r.fail(root.child("fleet"), "fleet.subscribe needs the mqtt section (the broker the other instances publish to)");
  }
  CameraConfig defaults;
  defaults.detector = cfg.detector;
  defaults.tracker = cfg.tracker;
  {
    MapReader r(root.child("defaults"), "defaults", file);
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
    r.finish();
    if (c.source.empty()) r.fail(kv.second ? kv.second : kv.first, fmt::format("cameras.{}: no source", name));
    cfg.cameras.push_back(c);
  }
  read_alerts(root, cfg);
  root.finish();
  return cfg;
}

ServeConfig load_serve_config(const std::filesystem::path& file) {
  return parse_serve_config(read_file_text(file, "config file"), file);
}

nlohmann::json ServeConfig::to_json(bool redact) const {
  const auto secret = [&](const std::string& s) { return redact && !s.empty() ? std::string("***") : s; };
  const auto detector_json = [](const DetectorSettings& d) {
    return nlohmann::json{
        {"face_model", d.face_model.empty() ? std::string(default_face_model_name()) + " (default)" : d.face_model},
        {"score_threshold", d.score_threshold},
        {"detect_width", d.detect_width},
        {"margin", d.margin},
        {"reclassify_after_s", d.reclassify_after_s}};
  };
  const auto tracker_json = [](const TrackerOptions& t) {
    return nlohmann::json{{"tau_s", t.tau_s},
                          {"enter", t.enter},
                          {"uncertain_after_s", t.uncertain_after_s},
                          {"max_missed_s", t.max_missed_s},
                          {"iou_match", t.iou_match}};
  };
  nlohmann::json cams = nlohmann::json::object();
  for (const auto& c : cameras)
    cams[c.name] = {{"source", redact ? redact_url(c.source) : c.source},
                    {"enabled", c.enabled},
                    {"width", c.width},
                    {"height", c.height},
                    {"fps_limit", c.fps_limit},
                    {"loop", c.loop},
                    {"mirror", c.mirror},
                    {"reconnect_max_s", c.reconnect_max_s},
                    {"detector", detector_json(c.detector)},
                    {"tracker", tracker_json(c.tracker)},
                    {"motion",
                     {{"enabled", c.motion.enabled},
                      {"threshold", c.motion.threshold},
                      {"min_area", c.motion.min_area},
                      {"full_every_s", c.motion.full_every_s}}}};
  nlohmann::json alert_list = nlohmann::json::array();
  for (const auto& a : alerts)
    alert_list.push_back({{"name", a.name},
                          {"kind", a.kind},
                          {"cameras", a.cameras},
                          {"seconds", a.seconds},
                          {"below", a.below},
                          {"window_minutes", a.window_minutes},
                          {"min_faces", a.min_faces},
                          {"cooldown_s", a.cooldown_s},
                          {"hours", a.hours},
                          {"weekdays", a.weekdays},
                          {"mqtt", a.mqtt},
                          {"webhook", redact ? redact_url(a.webhook) : a.webhook},
                          {"sound", a.sound}});
  return {
      {"file", file.string()},
      {"model", model.empty() ? default_model_path().string() : model},
      {"detector", [&] {
         auto d = detector_json(detector);
         d["workers"] = detector.workers ? nlohmann::json(detector.workers) : nlohmann::json("auto (one per core)");
         return d;
       }()},
      {"tracker", tracker_json(tracker)},
      {"http",
       {{"listen", http.listen},
        {"port", http.port},
        {"max_stream_clients", http.max_stream_clients},
        {"max_streams", http.max_streams},
        {"max_connections_per_client", http.max_connections_per_client},
        {"request_timeout_s", http.request_timeout_s},
        {"stream_fps", http.stream_fps},
        {"jpeg_quality", http.jpeg_quality},
        {"auth",
         {{"token", secret(http.auth.token)}, {"user", http.auth.user}, {"password", secret(http.auth.password)}}}}},
      {"storage",
       {{"dir", storage.dir},
        {"retention_days", storage.retention_days},
        {"max_disk_mb", storage.max_disk_mb},
        {"snapshots", storage.snapshots}}},
      {"mqtt",
       {{"enabled", mqtt.enabled},
        {"host", mqtt.host},
        {"port", mqtt.port},
        {"user", mqtt.user},
        {"password", secret(mqtt.password)},
        {"client_id", mqtt.client_id},
        {"topic_prefix", mqtt.prefix()},
        {"tls", mqtt.tls},
        {"compliance_interval_s", mqtt.compliance_interval_s},
        {"discovery", mqtt.discovery},
        {"discovery_prefix", mqtt.discovery_prefix},
        {"stats_interval_s", mqtt.stats_interval_s},
        {"buffer_messages", mqtt.buffer_messages}}},
      {"alerts", alert_list},
      {"fleet", {{"subscribe", fleet.subscribe}}},
      {"cameras", cams}};
}

}  // namespace maskwatch
