#include "serve/alerts.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <ctime>

#include "util/files.h"
#include "util/stopwatch.h"

namespace maskwatch {

bool in_schedule(const AlertRule& rule, double unix_time) {
  const std::time_t t = static_cast<std::time_t>(unix_time);
  std::tm tm{};
  localtime_r(&t, &tm);
  const auto allowed = [](const std::vector<int>& list, int v) {
    return list.empty() || std::find(list.begin(), list.end(), v) != list.end();
  };
  return allowed(rule.hours, tm.tm_hour) && allowed(rule.weekdays, tm.tm_wday);
}

AlertEngine::AlertEngine(const ServeConfig& config, Engine& engine, Storage& storage, std::string base_url,
                         std::function<void(const nlohmann::json&)> to_mqtt)
    : rules_(config.alerts),
      engine_(engine),
      storage_(storage),
      base_url_(std::move(base_url)),
      to_mqtt_(std::move(to_mqtt)) {
  for (const auto& r : rules_)
    if (!r.webhook.empty()) webhooks_ = std::make_unique<WebhookSender>();
}

AlertEngine::~AlertEngine() { stop(); }

void AlertEngine::start() {
  if (rules_.empty()) return;
  cursor_ = engine_.bus().head();  // here, not in the thread: no event of the cameras' start is missed
  thread_ = std::thread([this] { loop(); });
}

void AlertEngine::stop() {
  if (stop_.exchange(true)) return;
  if (thread_.joinable()) thread_.join();
  webhooks_.reset();
}

bool AlertEngine::applies(const AlertRule& rule, const std::string& camera) const {
  return rule.cameras.empty() || std::find(rule.cameras.begin(), rule.cameras.end(), camera) != rule.cameras.end();
}

// Keeps what the rules need from the live events.
void AlertEngine::observe(const nlohmann::json& e) {
  const std::string type = e.value("type", "");
  const std::string camera = e.value("camera", "");
  if (type == "status") {
    if (e.value("status", "") == "offline")
      offline_since_.emplace(camera, e.value("time", unix_now()));
    else {
      offline_since_.erase(camera);
      for (auto it = fired_outages_.begin(); it != fired_outages_.end();)
        it = it->second == camera ? fired_outages_.erase(it) : std::next(it);
    }
    return;
  }
  if (type != "new" && type != "update" && type != "end") return;
  const auto key = std::make_pair(camera, e.value("track_id", -1));
  const std::string label = e.value("label", "");
  if (type == "end" || label == engine_.mask_label()) {
    // The episode is over: the next time this face shows without a mask is a new one.
    unmasked_since_.erase(key);
    for (auto it = fired_tracks_.begin(); it != fired_tracks_.end();)
      it = std::get<1>(*it) == camera && std::get<2>(*it) == key.second ? fired_tracks_.erase(it) : std::next(it);
  } else if (label == "uncertain") {
    unmasked_since_.erase(key);  // not known to be unmasked; the episode may go on
  } else {
    unmasked_since_.emplace(key, e.value("time", unix_now()));
  }
}

void AlertEngine::check(double now) {
  const bool compliance_due = now >= next_compliance_check_;
  if (compliance_due) next_compliance_check_ = now + 10;
  for (const auto& rule : rules_) {
    if (!in_schedule(rule, now)) continue;
    for (const auto& camera : engine_.camera_names()) {
      if (!applies(rule, camera)) continue;
      const auto last = last_fired_.find({rule.name, camera});
      if (last != last_fired_.end() && now - last->second < rule.cooldown_s) continue;
      if (rule.kind == "unmasked_face") {
        for (const auto& [key, since] : unmasked_since_) {
          if (key.first != camera || now - since < rule.seconds || fired_tracks_.count({rule.name, camera, key.second}))
            continue;
          fired_tracks_.insert({rule.name, camera, key.second});
          fire(rule, camera, now, fmt::format("a face without a mask for {:.0f} s on {}", now - since, camera),
               {{"track_id", key.second}, {"since", since}}, true);
          break;  // one alert per check and camera; the cooldown decides about the next
        }
      } else if (rule.kind == "camera_offline") {
        const auto off = offline_since_.find(camera);
        if (off == offline_since_.end() || now - off->second < rule.seconds ||
            fired_outages_.count({rule.name, camera}))
          continue;
        fired_outages_.insert({rule.name, camera});
        fire(rule, camera, now, fmt::format("camera {} offline for {:.0f} s", camera, now - off->second),
             {{"since", off->second}}, false);
      } else if (rule.kind == "low_compliance" && compliance_due) {
        int64_t faces = 0, with = 0, without = 0;
        for (const auto& b : storage_.compliance(camera, now - rule.window_minutes * 60, now + 60, 60))
          faces += b.faces, with += b.with_mask, without += b.without_mask;
        if (faces < rule.min_faces || with + without == 0) continue;
        const double share = static_cast<double>(with) / static_cast<double>(with + without);
        if (share >= rule.below) continue;
        fire(rule, camera, now,
             fmt::format("compliance {:.0f} % on {} over {:.0f} min ({} faces), under {:.0f} %", 100 * share, camera,
                         rule.window_minutes, faces, 100 * rule.below),
             {{"compliance", share}, {"faces", faces}}, true);
      }
    }
  }
}

void AlertEngine::fire(const AlertRule& rule, const std::string& camera, double now, const std::string& message,
                       const nlohmann::json& extra, bool with_snapshot) {
  last_fired_[{rule.name, camera}] = now;
  ++fired_;
  std::string snapshot;
  if (with_snapshot) {
    if (const auto jpeg = engine_.latest_jpeg(camera)) {
      snapshot = fmt::format("alert-{:.0f}-{}.jpg", now * 1000, camera);
      try {
        write_file_atomic(storage_.snapshot_dir() / snapshot, jpeg->bytes.data(), jpeg->bytes.size());
      } catch (const std::exception& e) {
        spdlog::warn("alert {}: snapshot: {}", rule.name, e.what());
        snapshot.clear();
      }
    }
  }
  const int64_t id = engine_.history().add_alert(camera, now, rule.name, message, snapshot);
  const std::string path = snapshot.empty() || id == 0 ? "" : fmt::format("/api/events/{}/snapshot.jpg", id);
  nlohmann::json alert = {
      {"type", "alert"},  {"id", id},    {"rule", rule.name},  {"kind", rule.kind},
      {"camera", camera}, {"time", now}, {"message", message}, {"snapshot_url", path.empty() ? "" : base_url_ + path}};
  for (const auto& [k, v] : extra.items()) alert[k] = v;
  spdlog::info("alert {}: {}", rule.name, message);
  engine_.bus().publish(alert.dump());
  if (rule.mqtt && to_mqtt_) to_mqtt_(alert);
  if (!rule.webhook.empty() && webhooks_) webhooks_->post(rule.webhook, alert.dump());
}

void AlertEngine::loop() {
  while (!stop_) {
    for (const auto& line : engine_.bus().read(&cursor_, std::chrono::milliseconds(200))) {
      const auto e = nlohmann::json::parse(line, nullptr, false);
      if (!e.is_discarded()) observe(e);
    }
    try {
      check(unix_now());
    } catch (const std::exception& e) {
      spdlog::warn("alerts: {}", e.what());
    }
    if (engine_.bus().closed()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

}  // namespace maskwatch
