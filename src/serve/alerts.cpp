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
                         std::function<void(const AlertFired&)> to_mqtt)
    : rules_(config.alerts),
      engine_(engine),
      storage_(storage),
      base_url_(std::move(base_url)),
      to_mqtt_(std::move(to_mqtt)) {
  for (const auto& r : rules_) {
    if (!r.webhook.empty()) webhooks_ = std::make_unique<WebhookSender>();
    if (r.kind == "unmasked_face") unmasked_.emplace(&r, UnmaskedRule(r.seconds, engine_.mask_class()));
  }
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
void AlertEngine::observe(const LiveEvent& e) {
  if (const auto* st = std::get_if<StatusChanged>(&e)) {
    if (st->status == CameraStatus::Offline) {
      if (st->detail != kServiceStopped) offline_since_.emplace(st->camera, st->time);
    } else {
      offline_since_.erase(st->camera);
      for (auto it = fired_outages_.begin(); it != fired_outages_.end();)
        it = it->second == st->camera ? fired_outages_.erase(it) : std::next(it);
    }
  } else if (const auto* v = std::get_if<FaceVerdict>(&e)) {
    for (auto& [name, rule] : unmasked_) rule.on_verdict(v->camera, v->change);
  } else if (const auto* f = std::get_if<FaceEnded>(&e)) {
    for (auto& [name, rule] : unmasked_) rule.on_end(f->camera, f->track.track_id);
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
        // One alert per check and camera; the cooldown decides about the next.
        if (const auto due = unmasked_.at(&rule).next_due(now, camera)) {
          AlertFired a;
          // Tenths under 10 s (a rule of 1.5 s does not read "for 2 s"), whole seconds above.
          const double shown_s = now - due->since;
          a.message = fmt::format("a face without a mask for {} s on {}",
                                  shown_s < 10 ? fmt::format("{:.1f}", shown_s) : fmt::format("{:.0f}", shown_s), camera);
          a.track_id = due->track_id;
          a.since = due->since;
          fire(rule, camera, now, std::move(a), true);
        }
      } else if (rule.kind == "camera_offline") {
        const auto off = offline_since_.find(camera);
        if (off == offline_since_.end() || now - off->second < rule.seconds ||
            fired_outages_.count({rule.name, camera}))
          continue;
        fired_outages_.insert({rule.name, camera});
        AlertFired a;
        a.message = fmt::format("camera {} offline for {:.0f} s", camera, now - off->second);
        a.since = off->second;
        fire(rule, camera, now, std::move(a), false);
      } else if (rule.kind == "low_compliance" && compliance_due) {
        int64_t faces = 0, with = 0, without = 0;
        // Faces in view count too (Engine::compliance): one unmasked all day at a counter never ends.
        for (const auto& b : engine_.compliance(camera, now - rule.window_minutes * 60, now + 60, 60))
          faces += b.faces, with += b.with_mask, without += b.without_mask;
        if (faces < rule.min_faces || with + without == 0) continue;
        const double share = static_cast<double>(with) / static_cast<double>(with + without);
        if (share >= rule.below) continue;
        AlertFired a;
        a.message = fmt::format("compliance {:.0f} % on {} over {:.0f} min ({} faces), under {:.0f} %", 100 * share,
                                camera, rule.window_minutes, faces, 100 * rule.below);
        a.compliance = share;
        a.faces = faces;
        fire(rule, camera, now, std::move(a), true);
      }
    }
  }
}

void AlertEngine::fire(const AlertRule& rule, const std::string& camera, double now, AlertFired a,
                       bool with_snapshot) {
  last_fired_[{rule.name, camera}] = now;
  ++fired_;
  std::string snapshot;
  // privacy none: no face pixels are stored, a picture of the scene neither.
  if (with_snapshot && engine_.privacy(camera) != FacePrivacy::None) {
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
  // A clip from before to after the alert, ready after_s from now (rules with a picture).
  const std::string clip = with_snapshot ? engine_.request_clip(camera, now, "alert") : "";
  a.id = engine_.history().add_alert(camera, now, rule.name, rule.kind, a.message, snapshot, clip);
  const std::string path = snapshot.empty() || a.id == 0 ? "" : fmt::format("/api/events/{}/snapshot.jpg", a.id);
  if (!clip.empty() && a.id != 0) a.clip_url = base_url_ + fmt::format("/api/events/{}/clip.mp4", a.id);
  a.rule = rule.name;
  a.kind = rule.kind;
  a.camera = camera;
  a.time = now;
  a.snapshot_url = path.empty() ? "" : base_url_ + path;
  spdlog::info("alert {}: {}", rule.name, a.message);
  engine_.bus().publish(a);
  if (rule.mqtt && to_mqtt_) to_mqtt_(a);
  if (!rule.webhook.empty() && webhooks_) webhooks_->post(rule.webhook, to_json(a).dump());
}

void AlertEngine::loop() {
  while (!stop_) {
    for (const auto& e : engine_.bus().read(&cursor_, std::chrono::milliseconds(200))) observe(*e);
    try {
      check(unix_now());
    } catch (const std::exception& e) {
      spdlog::warn("alerts: {}", e.what());
    }
    if (engine_.bus().closed()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

}  // namespace maskwatch
