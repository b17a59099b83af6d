#include "serve/mqtt_bridge.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <chrono>

#include "util/stopwatch.h"

namespace maskwatch {
namespace {

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return s;
}

}  // namespace

MqttBridge::MqttBridge(const ServeConfig& config, Engine& engine, FleetView* fleet)
    : config_(config.mqtt),
      fleet_filters_(config.fleet.subscribe),
      fleet_(fleet),
      prefix_(config.mqtt.prefix()),
      engine_(engine) {}

MqttBridge::~MqttBridge() { stop(); }

void MqttBridge::start() {
  MqttOptions o;
  o.host = config_.host;
  o.port = config_.port;
  o.tls = config_.tls;
  o.client_id = config_.client_id;
  o.user = config_.user;
  o.password = config_.password;
  o.capacity = static_cast<size_t>(config_.buffer_messages);
  o.will = {prefix_ + "/available", "offline", 1, true};
  o.on_connect = {prefix_ + "/available", "online", 1, true};
  // Our own retained camera states too: those of cameras no longer configured (removed while
  // we were stopped or killed) are cleared, as a reload clears a removed camera's.
  o.subscribe = {prefix_ + "/+/detect/set", prefix_ + "/+/status"};
  if (fleet_) o.subscribe.insert(o.subscribe.end(), fleet_filters_.begin(), fleet_filters_.end());
  client_ = std::make_unique<MqttClient>(o, [this](const std::string& t, const std::string& p) { on_message(t, p); });
  if (fleet_) fleet_->set_broker_probe([this] { return client_->connected(); });
  // Retained state starts from a known point: counts 0, detection on, status as it is now.
  for (const auto& cam : engine_.camera_names())
    publish(cam + "/detect/state", engine_.detect_enabled(cam) ? "ON" : "OFF", true);
  publish_counts(/*force=*/true);
  if (config_.discovery) publish_discovery(engine_.camera_names());
  cursor_ = engine_.bus().head();  // here, not in the thread: no event of the cameras' start is missed
  thread_ = std::thread([this] { loop(); });
}

void MqttBridge::stop() {
  if (stop_.exchange(true)) return;
  if (fleet_) fleet_->set_broker_probe(nullptr);  // the probe reads our client
  if (thread_.joinable()) thread_.join();
  if (client_) client_->close({prefix_ + "/available", "stopped", 1, true});
}

void MqttBridge::publish(const std::string& suffix, const std::string& payload, bool retained) {
  client_->publish({prefix_ + "/" + suffix, payload, 1, retained});
}

void MqttBridge::publish_alert(const AlertFired& alert) {
  if (client_) client_->publish({prefix_ + "/alerts", to_json(alert).dump(), 1, false});
}

std::string MqttBridge::own_camera(const std::string& topic, const std::string& tail) const {
  const std::string head = prefix_ + "/";
  if (topic.size() <= head.size() + tail.size() || topic.compare(0, head.size(), head) != 0 ||
      topic.compare(topic.size() - tail.size(), tail.size(), tail) != 0)
    return "";
  return topic.substr(head.size(), topic.size() - head.size() - tail.size());
}

void MqttBridge::on_message(const std::string& topic, const std::string& payload) {
  // <prefix>/<camera>/status of a camera not in the config: a retained state left by a run
  // before, when that camera was configured (it showed "online, 1 face without a mask" for
  // ever, on the fleet page and in Home Assistant). Cleared from the bridge's own thread.
  if (const std::string gone = own_camera(topic, "/status");
      !gone.empty() && gone.find('/') == std::string::npos && !payload.empty() && !engine_.has_camera(gone)) {
    spdlog::info("mqtt: clearing the retained state of camera {} (not in the config)", gone);
    CameraChanges changes;
    changes.removed.push_back(gone);
    cameras_changed(changes);
  }
  // <prefix>/<camera>/detect/set
  const std::string camera = own_camera(topic, "/detect/set");
  if (camera.empty()) {
    if (fleet_) fleet_->on_message(topic, payload, unix_now());
    return;
  }
  // The camera first: for a topic naming no camera, its payload is beside the point.
  if (!engine_.has_camera(camera)) {
    spdlog::warn("mqtt: {}: no camera named '{}' (cameras: {})", topic, camera,
                 fmt::join(engine_.camera_names(), ", "));
    return;
  }
  const std::string value = upper(payload);
  if (value != "ON" && value != "OFF") {
    spdlog::warn("mqtt: {}: expected ON or OFF, got '{}'", topic, payload.substr(0, 40));
    return;
  }
  engine_.set_detect(camera, value == "ON");
  publish(camera + "/detect/state", value, true);
}

void MqttBridge::publish_event(const LiveEvent& e) {
  if (const auto* st = std::get_if<StatusChanged>(&e)) {
    publish(st->camera + "/status", status_name(st->status), true);
    return;
  }
  if (!std::holds_alternative<FaceVerdict>(e) && !std::holds_alternative<FaceEnded>(e)) return;
  // One shape for every face message: what the other kind has is there as null.
  nlohmann::json out = to_json(e, engine_.classes());
  for (const char* key : {"end_time", "snapshot_url"})
    if (!out.contains(key)) out[key] = nullptr;
  if (!out.contains("time")) out["time"] = out["end_time"];
  out.erase("id");  // the history row is the API's business
  client_->publish({prefix_ + "/events", out.dump(), 1, false});
}

// Home Assistant MQTT discovery: per camera three sensors (faces in view, without a mask,
// today's compliance), each a retained config naming the state topic this bridge already
// publishes, and the instance's availability topic ("online", else unavailable).
namespace {
constexpr const char* kSensorKeys[] = {"faces", "without_mask", "compliance"};
}

std::string MqttBridge::node_id() const {
  std::string node = config_.client_id;  // HA ids take [A-Za-z0-9_-]
  for (char& ch : node)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_' && ch != '-') ch = '_';
  return node;
}

std::string MqttBridge::discovery_topic(const std::string& camera, const char* sensor) const {
  return fmt::format("{}/sensor/maskwatch_{}_{}_{}/config", config_.discovery_prefix, node_id(), camera, sensor);
}

void MqttBridge::publish_discovery(const std::vector<std::string>& cameras) {
  const std::string node = node_id();
  struct Sensor {
    const char *key, *name, *unit, *icon, *value_template;
  };
  static const Sensor sensors[] = {
      {"faces", "faces in view", "faces", "mdi:account-multiple", nullptr},
      {"without_mask", "faces without mask", "faces", "mdi:face-mask-outline", nullptr},
      {"compliance", "compliance today", "%", "mdi:percent",
       "{{ (value_json.compliance * 100) | round(1) if value_json.compliance is not none else 'unknown' }}"}};
  for (const auto& cam : cameras)
    for (const auto& s : sensors) {
      const std::string id = fmt::format("maskwatch_{}_{}_{}", node, cam, s.key);
      nlohmann::json c = {
          {"name", fmt::format("{} {}", cam, s.name)},
          {"unique_id", id},
          {"object_id", id},
          {"state_topic", prefix_ + "/" + cam + "/" + s.key},
          {"unit_of_measurement", s.unit},
          {"state_class", "measurement"},
          {"icon", s.icon},
          {"availability",
           {{{"topic", prefix_ + "/available"},
             {"value_template", "{{ 'online' if value == 'online' else 'offline' }}"}}}},
          {"device",
           {{"identifiers", {fmt::format("maskwatch_{}_{}", node, cam)}},
            {"name", fmt::format("maskwatch {} {}", config_.client_id, cam)},
            {"manufacturer", "maskwatch"},
            {"model", "face mask compliance camera"},
            {"sw_version", MASKWATCH_VERSION}}}};
      if (s.value_template) c["value_template"] = s.value_template;
      client_->publish({discovery_topic(cam, s.key), c.dump(), 1, true});
    }
}

void MqttBridge::cameras_changed(const CameraChanges& changes) {
  std::lock_guard<std::mutex> lock(changes_mutex_);
  changes_.push_back(changes);
}

void MqttBridge::remove_camera(const std::string& camera) {
  for (const char* topic : {"faces", "without_mask", "status", "detect/state"}) publish(camera + "/" + topic, "", true);
  if (config_.discovery)
    for (const char* key : kSensorKeys) client_->publish({discovery_topic(camera, key), "", 1, true});
  last_counts_.erase(camera);
}

void MqttBridge::apply_camera_changes() {
  std::vector<CameraChanges> todo;
  {
    std::lock_guard<std::mutex> lock(changes_mutex_);
    todo.swap(changes_);
  }
  if (todo.empty()) return;
  // The engine's last word on a removed camera (its status) goes out before it is removed.
  for (const auto& e : engine_.bus().read(&cursor_, std::chrono::milliseconds(0))) publish_event(*e);
  for (const auto& ch : todo) {
    for (const auto& cam : ch.removed) remove_camera(cam);
    std::vector<std::string> fresh = ch.added;
    fresh.insert(fresh.end(), ch.changed.begin(), ch.changed.end());
    for (const auto& cam : fresh) {
      publish(cam + "/detect/state", engine_.detect_enabled(cam) ? "ON" : "OFF", true);
      last_counts_.erase(cam);  // its counts go out at once
    }
    // Its status as it is now: a removal applied after its first status (removed and added
    // again within one pass) must not leave it without one.
    for (const auto& [cam, stats] : engine_.camera_stats())
      if (std::find(fresh.begin(), fresh.end(), cam) != fresh.end()) publish(cam + "/status", status_name(stats.status), true);
    if (config_.discovery) publish_discovery(ch.added);
  }
}

// Retained current counts per camera: published when they change (and once at start).
void MqttBridge::publish_counts(bool force) {
  for (const auto& [cam, s] : engine_.camera_stats()) {
    const int faces = s.faces_now;
    const int without = std::max(0, faces - s.with_mask_now - s.faces_now_by_label.at("uncertain"));
    const bool now = force || !last_counts_.count(cam);  // a camera new to this bridge: at once
    auto& last = last_counts_[cam];
    if (now || last.first != faces) publish(cam + "/faces", std::to_string(faces), true);
    if (now || last.second != without) publish(cam + "/without_mask", std::to_string(without), true);
    last = {faces, without};
  }
}

// Today's compliance per camera (the /api/compliance day bucket).
void MqttBridge::publish_compliance() {
  const double now = unix_now(), start = today_start();
  for (const auto& cam : engine_.camera_names()) {
    const auto buckets = engine_.compliance(cam, start, now + 60, 86400);  // as /api/compliance: faces in view too
    ComplianceBucket today;
    today.start = static_cast<int64_t>(start);
    if (!buckets.empty()) today = buckets.front();
    publish(cam + "/compliance", today.to_json().dump(), false);
  }
}

void MqttBridge::loop() {
  using Clock = std::chrono::steady_clock;
  auto next_compliance = Clock::now();  // once at start (the sensors have a value at once), then every interval
  auto next_stats = Clock::now();  // stats once at start, then every stats_interval_s
  while (!stop_) {
    uint64_t missed = 0;
    const auto events = engine_.bus().read(&cursor_, std::chrono::milliseconds(200), &missed);
    if (missed)
      spdlog::warn("mqtt: {} live event(s) came faster than they could be published and were skipped", missed);
    for (const auto& e : events) {
      try {
        publish_event(*e);
      } catch (const std::exception& e) {
        spdlog::warn("mqtt: event not published: {}", e.what());
      }
    }
    try {
      apply_camera_changes();
      publish_counts(false);
      if (Clock::now() >= next_compliance) {
        publish_compliance();
        next_compliance = Clock::now() + std::chrono::seconds(config_.compliance_interval_s);
      }
      if (Clock::now() >= next_stats) {
        publish("stats", engine_.stats().dump(), false);
        next_stats = Clock::now() + std::chrono::seconds(config_.stats_interval_s);
      }
    } catch (const std::exception& e) {
      spdlog::warn("mqtt: {}", e.what());
    }
    if (engine_.bus().closed() && events.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  // Whatever the engine said while stopping (the tracks it ended) goes out too.
  for (const auto& e : engine_.bus().read(&cursor_, std::chrono::milliseconds(0))) {
    try {
      publish_event(*e);
    } catch (const std::exception&) {}
  }
  // Stopped: nobody is in view any more, and retained counts must not say otherwise.
  for (const auto& cam : engine_.camera_names()) {
    publish(cam + "/faces", "0", true);
    publish(cam + "/without_mask", "0", true);
  }
}

void MqttBridge::prometheus_metrics(PromText& out) const {
  if (!client_) return;
  out.family("maskwatch_mqtt_connected", "gauge", "1 while connected to the MQTT broker.")
      .sample("maskwatch_mqtt_connected", client_->connected() ? 1 : 0);
  out.family("maskwatch_mqtt_messages_total", "counter", "MQTT messages handed to the broker connection.")
      .sample("maskwatch_mqtt_messages_total", static_cast<double>(client_->sent()));
  out.family("maskwatch_mqtt_queued_messages", "gauge", "Messages held while the broker is unreachable.")
      .sample("maskwatch_mqtt_queued_messages", static_cast<double>(client_->queued()));
  out.family("maskwatch_mqtt_dropped_messages_total", "counter", "Messages dropped because the queue was full.")
      .sample("maskwatch_mqtt_dropped_messages_total", static_cast<double>(client_->dropped()));
}

}  // namespace maskwatch
