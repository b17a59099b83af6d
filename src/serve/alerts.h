// Alert rules of `serve` (config `alerts:`): an unmasked face visible for >= N s, compliance
// under a share over a window, a camera offline for >= N s; each with a cooldown per camera
// and a schedule (hours, weekdays, local time). A rule that fires becomes an `alert` event
// in storage (with a snapshot of the camera's newest frame for face and compliance rules)
// and on the live event stream, an MQTT message on <prefix>/alerts when the rule says so,
// and a webhook POST. Rules are checked on a thread of their own from the engine's events
// (its EventBus, own cursor) and the compliance history: the frame loop never waits for them.
#pragma once
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>

#include "serve/config.h"
#include "serve/engine.h"
#include "serve/storage.h"
#include "serve/webhook.h"
#include "vision/unmasked_rule.h"

namespace maskwatch {

class AlertEngine {
 public:
  // `base_url` (http://host:port) makes the snapshot URL in webhooks absolute; `to_mqtt` gets
  // the alerts of rules with mqtt: true (may be empty).
  AlertEngine(const ServeConfig& config, Engine& engine, Storage& storage, std::string base_url,
              std::function<void(const AlertFired&)> to_mqtt);
  ~AlertEngine();  // stop()
  AlertEngine(const AlertEngine&) = delete;
  AlertEngine& operator=(const AlertEngine&) = delete;

  void start();
  void stop();
  int64_t fired() const { return fired_; }

 private:
  void loop();
  void observe(const LiveEvent& e);
  void check(double now);
  // Completes `a` (id, rule, camera, time, snapshot) and sends it everywhere the rule says.
  void fire(const AlertRule& rule, const std::string& camera, double now, AlertFired a, bool with_snapshot);
  bool applies(const AlertRule& rule, const std::string& camera) const;

  std::vector<AlertRule> rules_;
  Engine& engine_;
  Storage& storage_;
  std::string base_url_;
  std::function<void(const AlertFired&)> to_mqtt_;
  std::unique_ptr<WebhookSender> webhooks_;
  // What the events said: unmasked episodes (per unmasked_face rule), cameras offline since.
  std::map<const AlertRule*, UnmaskedRule> unmasked_;  // of rules_ (names may repeat)
  std::map<std::string, double> offline_since_;
  std::map<std::pair<std::string, std::string>, double> last_fired_;  // (rule, camera)
  std::set<std::pair<std::string, std::string>> fired_outages_;       // (rule, camera)
  double next_compliance_check_ = 0;
  std::atomic<int64_t> fired_{0};
  uint64_t cursor_ = 0;  // next event of the engine's bus to read
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Whether a rule's schedule allows `unix_time` (local hour and weekday).
bool in_schedule(const AlertRule& rule, double unix_time);

}  // namespace maskwatch
