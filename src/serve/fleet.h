// The fleet view: what other maskwatch instances publish on MQTT (config `fleet: {subscribe:
// [maskwatch/+/#]}`), kept per site (a site is a topic prefix, maskwatch/<client_id> by
// default): availability, and per camera its status, faces now, faces without a mask now
// and today's compliance. One central dashboard for many devices, with no server of our own
// beyond the broker. Fed by MqttBridge's subscription; thread-safe.
#pragma once
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

namespace maskwatch {

class FleetView {
 public:
  static constexpr size_t kMaxSites = 256, kMaxCamerasPerSite = 256;
  // Returns false when the topic is not one a maskwatch instance publishes.
  bool on_message(const std::string& topic, const std::string& payload, double now);
  // {"broker_connected", "sites": [{site, available, live, last_seen, cameras: {name: {status,
  // detect, faces, without_mask, compliance, stale}}}]}. A site is live while it says "online"
  // and we hear the broker; the cameras of a site that is not live are `stale`: their last
  // retained state, not what they see now (a killed site's cameras read "online, 1 face").
  nlohmann::json to_json() const;
  // Whether we hear the broker now (MqttBridge sets it; empty: taken as connected). Without
  // it a broker outage looked like every site going offline.
  void set_broker_probe(std::function<bool()> probe);

 private:
  struct Site {
    std::string available = "unknown";
    double last_seen = 0;
    std::map<std::string, nlohmann::json> cameras;
  };
  // Made on first mention; nullptr past the caps (anyone who may publish to the broker could
  // otherwise grow the view, and /api/fleet, without end). A new site takes the place of the
  // one not online heard from longest ago.
  Site* site_entry(const std::string& name);
  nlohmann::json* camera_entry(Site& site, const std::string& camera);
  mutable std::mutex mutex_;
  bool warned_sites_full_ = false, warned_cameras_full_ = false;
  std::map<std::string, Site> sites_;
  std::function<bool()> broker_probe_;
};

}  // namespace maskwatch
