// The fleet view: what other maskwatch instances publish on MQTT (config `fleet: {subscribe:
// [maskwatch/+/#]}`), kept per site (a site is a topic prefix, maskwatch/<client_id> by
// default): availability, and per camera its status, faces now, faces without a mask now
// and today's compliance. One central dashboard for many devices, with no server of our own
// beyond the broker. Fed by MqttBridge's subscription; thread-safe.
#pragma once
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

namespace maskwatch {

class FleetView {
 public:
  // Returns false when the topic is not one a maskwatch instance publishes.
  bool on_message(const std::string& topic, const std::string& payload, double now);
  // {"sites": [{site, available, last_seen, cameras: {name: {status, faces, without_mask, compliance}}}]}
  nlohmann::json to_json() const;

 private:
  struct Site {
    std::string available = "unknown";
    double last_seen = 0;
    std::map<std::string, nlohmann::json> cameras;
  };
  mutable std::mutex mutex_;
  std::map<std::string, Site> sites_;
};

}  // namespace maskwatch
