// `serve` on MQTT: publishes the engine's state and events under <prefix>/ (topics in the
// README) and takes `<prefix>/<camera>/detect/set` ON/OFF. It reads the engine's EventBus
// with its own cursor and polls the live counts on its own thread, so the frame loop never
// waits for the broker; MqttClient holds what cannot be sent while the broker is down.
#pragma once
#include <atomic>
#include <memory>
#include <mutex>
#include <vector>
#include <string>
#include <thread>

#include "serve/config.h"
#include "serve/engine.h"
#include "serve/fleet.h"
#include "serve/mqtt_client.h"
#include "serve/storage.h"

namespace maskwatch {

class MqttBridge {
 public:
  // With `fleet`, the config's fleet filters are subscribed too and other instances'
  // messages go to it.
  MqttBridge(const ServeConfig& config, Engine& engine, FleetView* fleet = nullptr);
  ~MqttBridge();  // stop()
  MqttBridge(const MqttBridge&) = delete;
  MqttBridge& operator=(const MqttBridge&) = delete;

  void start();
  // Publishes the last state, `available` = stopped, and disconnects cleanly.
  void stop();
  void prometheus_metrics(PromText& out) const;
  void publish_alert(const AlertFired& alert);  // <prefix>/alerts, QoS 1
  // After a reconfiguration: new and changed cameras get their retained state and Home
  // Assistant sensors; removed ones lose theirs (empty retained messages delete them).
  // Applied on the bridge's thread, after the events the engine published before.
  void cameras_changed(const CameraChanges& changes);

 private:
  void loop();
  void on_message(const std::string& topic, const std::string& payload);
  void publish(const std::string& suffix, const std::string& payload, bool retained);
  void publish_event(const LiveEvent& e);
  void publish_counts(bool force);
  void publish_compliance();
  void publish_discovery(const std::vector<std::string>& cameras);
  void remove_camera(const std::string& camera);
  void apply_camera_changes();
  std::string node_id() const;  // the client id as Home Assistant ids allow it
  std::string discovery_topic(const std::string& camera, const char* sensor) const;
  // The camera part of <prefix>/<camera><tail>, or "" for any other topic.
  std::string own_camera(const std::string& topic, const std::string& tail) const;

  MqttConfig config_;
  std::vector<std::string> fleet_filters_;
  FleetView* fleet_;
  std::string prefix_;
  Engine& engine_;
  std::unique_ptr<MqttClient> client_;
  std::map<std::string, std::pair<int, int>> last_counts_;  // camera -> (faces, without_mask)
  uint64_t cursor_ = 0;                                     // next event of the engine's bus to read
  std::mutex changes_mutex_;
  std::vector<CameraChanges> changes_;  // waiting for the bridge's thread
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace maskwatch
