// An MQTT connection that a service can lean on (Paho C, asynchronous client): it connects
// in the background and keeps reconnecting (1 s doubling to 10 s) while the broker is down,
// sets a retained Last Will, re-subscribes after every reconnect, and holds what is
// published while disconnected in a bounded queue (the oldest dropped beyond `capacity`,
// and counted) that is sent, in order, as soon as the connection is back. publish() only
// queues: it never blocks on the network or the broker.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace maskwatch {

struct MqttMessage {
  std::string topic, payload;
  int qos = 1;
  bool retained = false;
};

struct MqttOptions {
  std::string host = "127.0.0.1";
  int port = 1883;
  bool tls = false;
  std::string client_id, user, password;
  MqttMessage will;                    // sent by the broker if we vanish (topic empty = none)
  MqttMessage on_connect;              // published first after every (re)connect (topic empty = none)
  std::vector<std::string> subscribe;  // topic filters, subscribed after every (re)connect
  size_t capacity = 1000;
};

class MqttClient {
 public:
  using Handler = std::function<void(const std::string& topic, const std::string& payload)>;
  // Starts connecting at once; `on_message` runs on Paho's thread for subscribed topics.
  MqttClient(MqttOptions options, Handler on_message = {});
  // Publishes `last` (e.g. a retained "stopped"), waits up to 2 s for what is in flight,
  // then disconnects. Safe to call twice.
  void close(const MqttMessage& last = {});
  ~MqttClient();
  MqttClient(const MqttClient&) = delete;
  MqttClient& operator=(const MqttClient&) = delete;

  void publish(MqttMessage m);

  bool connected() const { return is_connected_; }
  size_t queued() const;
  int64_t dropped() const { return dropped_; }
  int64_t sent() const { return sent_; }
  std::string uri() const;

 private:
  friend struct MqttCallbacks;  // Paho's C callbacks (mqtt_client.cpp)
  // The one thread that calls Paho (connect, subscribe, send): callbacks and publish() only
  // touch our state under mutex_, so Paho's locks and ours are never held in two orders.
  void run();
  bool send(const MqttMessage& m);  // false when Paho refuses it (not connected)

  MqttOptions o_;
  Handler on_message_;
  void* client_ = nullptr;  // MQTTAsync
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<MqttMessage> queue_;
  bool connected_ = false, connecting_ = false, just_connected_ = false, closing_ = false, warned_ = false;
  std::chrono::steady_clock::time_point connected_at_;  // of the last connect
  int quick_losses_ = 0;                                // connections in a row lost within 5 s
  std::string last_failure_;  // why the last connect failed ("" after a connect)
  std::atomic<bool> is_connected_{false};
  std::atomic<int64_t> dropped_{0}, sent_{0};
  std::thread thread_;
  // What the disconnect's completion callback sets: a member, so that a callback Paho makes
  // after close() gave up waiting (a stalled broker) finds it alive until MQTTAsync_destroy.
  struct Done;
  std::unique_ptr<Done> disconnect_done_;
};

}  // namespace maskwatch
