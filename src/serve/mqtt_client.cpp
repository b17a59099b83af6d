#include "serve/mqtt_client.h"

#include <MQTTAsync.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>

#include "util/bounded_queue.h"
#include "util/error.h"

namespace maskwatch {

// A one-shot flag another thread sets (Paho's completion callbacks).
struct MqttClient::Done {
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  void set() {
    std::lock_guard<std::mutex> lock(m);
    done = true;
    cv.notify_all();
  }
  void wait(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(m);
    cv.wait_for(lock, timeout, [&] { return done; });
  }
};

namespace {

// Why a connect failed, in words. Paho reports a broker's refusal with the CONNACK return
// code (1..5, MQTT 3.1.1) and the message "CONNACK return code", and its own failures
// (socket, TLS) with negative codes and their text.
std::string connect_failure(const MQTTAsync_failureData* response) {
  if (!response) return "no reason given";
  switch (response->code) {
    case 1: return "the broker refused the connection: unacceptable protocol version (CONNACK 1)";
    case 2: return "the broker refused the connection: client id rejected (CONNACK 2)";
    case 3: return "the broker refused the connection: server unavailable (CONNACK 3)";
    case 4: return "the broker refused the credentials: bad user name or password (CONNACK 4)";
    case 5: return "the broker refused the credentials: not authorized (CONNACK 5)";
    default: break;
  }
  return response->message ? fmt::format("{} (code {})", response->message, response->code)
                           : fmt::format("code {}", response->code);
}

}  // namespace

// Paho calls these on its own thread, with the MqttClient as context. They only change our
// state and wake the client's thread; they never call back into Paho.
struct MqttCallbacks {
  static void connected(void* ctx, char*) {
    auto& c = *static_cast<MqttClient*>(ctx);
    {
      std::lock_guard<std::mutex> lock(c.mutex_);
      c.connected_ = c.just_connected_ = true;
      c.connected_at_ = std::chrono::steady_clock::now();
      c.last_failure_.clear();
      c.is_connected_ = true;
      c.connecting_ = false;
      if (c.warned_)
        spdlog::info("mqtt: connected to {} again", c.uri());
      else
        spdlog::info("mqtt: connected to {} as {}", c.uri(), c.o_.client_id);
      c.warned_ = false;
    }
    c.wake_.notify_all();
  }
  static void connection_lost(void* ctx, char* cause) {
    auto& c = *static_cast<MqttClient*>(ctx);
    {
      std::lock_guard<std::mutex> lock(c.mutex_);
      c.connected_ = false;
      c.is_connected_ = false;
      if (!c.closing_)
        spdlog::warn("mqtt: lost the connection to {}{}; reconnecting, holding up to {} messages meanwhile", c.uri(),
                     cause ? std::string(" (") + cause + ")" : "", c.o_.capacity);
      // A broker drops a client when another connects with its client id; two sites with one
      // id (the default `maskwatch` on both) push each other out every second or two, and
      // their fleet entries merge. Said once, after the third such drop in a row.
      const bool quick = std::chrono::steady_clock::now() - c.connected_at_ < std::chrono::seconds(5);
      c.quick_losses_ = quick ? c.quick_losses_ + 1 : 0;
      if (c.quick_losses_ == 3 && !c.closing_)
        spdlog::warn("mqtt: {} drops this connection seconds after each connect: is another client using the "
                     "client id {} (mqtt.client_id; give each site its own)?",
                     c.uri(), c.o_.client_id);
      c.warned_ = true;
    }
    c.wake_.notify_all();
  }
  static void connect_failed(void* ctx, MQTTAsync_failureData* response) {
    auto& c = *static_cast<MqttClient*>(ctx);
    {
      std::lock_guard<std::mutex> lock(c.mutex_);
      c.connecting_ = false;
      c.last_failure_ = connect_failure(response);
      if (!c.warned_)
        spdlog::warn("mqtt: cannot connect to {}: {}; retrying, holding up to {} messages meanwhile", c.uri(),
                     c.last_failure_, c.o_.capacity);
      c.warned_ = true;
    }
    c.wake_.notify_all();
  }
  static int message(void* ctx, char* topic, int topic_len, MQTTAsync_message* m) {
    auto& c = *static_cast<MqttClient*>(ctx);
    const std::string t = topic_len > 0 ? std::string(topic, static_cast<size_t>(topic_len)) : std::string(topic);
    const std::string payload(static_cast<const char*>(m->payload), static_cast<size_t>(m->payloadlen));
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    if (c.on_message_) {
      try {
        c.on_message_(t, payload);
      } catch (const std::exception& e) {
        spdlog::warn("mqtt: message on {}: {}", t, e.what());
      }
    }
    return 1;
  }
};

MqttClient::MqttClient(MqttOptions options, Handler on_message)
    : o_(std::move(options)), on_message_(std::move(on_message)) {
  MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
  co.MQTTVersion = MQTTVERSION_3_1_1;
  MQTTAsync handle = nullptr;
  const int rc = MQTTAsync_createWithOptions(&handle, uri().c_str(), o_.client_id.c_str(), MQTTCLIENT_PERSISTENCE_NONE,
                                             nullptr, &co);
  if (rc != MQTTASYNC_SUCCESS) throw Error(fmt::format("mqtt: cannot create a client for {} (code {})", uri(), rc));
  client_ = handle;
  MQTTAsync_setCallbacks(handle, this, &MqttCallbacks::connection_lost, &MqttCallbacks::message, nullptr);
  MQTTAsync_setConnected(handle, this, &MqttCallbacks::connected);
  thread_ = std::thread([this] { run(); });
}

MqttClient::~MqttClient() {
  close();
  MQTTAsync handle = client_;
  if (handle) MQTTAsync_destroy(&handle);
}

std::string MqttClient::uri() const { return fmt::format("{}://{}:{}", o_.tls ? "ssl" : "tcp", o_.host, o_.port); }

bool MqttClient::send(const MqttMessage& m) {
  MQTTAsync_message msg = MQTTAsync_message_initializer;
  msg.payload = const_cast<char*>(m.payload.data());
  msg.payloadlen = static_cast<int>(m.payload.size());
  msg.qos = m.qos;
  msg.retained = m.retained;
  MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
  if (MQTTAsync_sendMessage(static_cast<MQTTAsync>(client_), m.topic.c_str(), &msg, &ro) != MQTTASYNC_SUCCESS)
    return false;
  ++sent_;
  return true;
}

// Connects whenever there is no connection and none in progress (1 s doubling to 10 s
// between failures), subscribes after each connect, and sends the queue in order. Ends when
// closing and the queue is sent (or cannot be: no connection).
void MqttClient::run() {
  auto handle = static_cast<MQTTAsync>(client_);
  double backoff_s = 1;
  auto next_connect = std::chrono::steady_clock::now(), connect_started = next_connect;
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    if (closing_ && (queue_.empty() || !connected_)) break;
    if (just_connected_) {
      just_connected_ = false;
      backoff_s = 1;
      lock.unlock();
      for (const auto& filter : o_.subscribe) {
        MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
        const int rc = MQTTAsync_subscribe(handle, filter.c_str(), 1, &ro);
        if (rc != MQTTASYNC_SUCCESS) spdlog::warn("mqtt: cannot subscribe to {} (code {})", filter, rc);
      }
      if (!o_.on_connect.topic.empty()) send(o_.on_connect);
      lock.lock();
      continue;
    }
    if (connected_ && !queue_.empty()) {
      MqttMessage m = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      const bool ok = send(m);
      const bool still_connected = ok || MQTTAsync_isConnected(handle);
      lock.lock();
      if (!ok) {  // it goes back first in line
        if (queue_.size() >= o_.capacity)
          ++dropped_;
        else
          queue_.push_front(std::move(m));
        if (still_connected) {
          // Refused while connected: Paho's window of unacknowledged QoS 1 messages is full
          // (a long queue after an outage). Wait for acknowledgements, then go on.
          wake_.wait_for(lock, std::chrono::milliseconds(20));
        } else {
          connected_ = false;  // Paho reports the loss too (connection_lost)
          is_connected_ = false;
        }
      }
      continue;
    }
    if (connecting_ && std::chrono::steady_clock::now() > connect_started + std::chrono::seconds(15)) {
      // Paho answers every connect (5 s time-out) with a callback; should one never come,
      // try again rather than wait forever.
      spdlog::warn("mqtt: no answer to the connect to {} after 15 s; trying again", uri());
      connecting_ = false;
    }
    if (!connected_ && !connecting_ && !closing_ && std::chrono::steady_clock::now() >= next_connect) {
      connecting_ = true;
      connect_started = std::chrono::steady_clock::now();
      lock.unlock();
      MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
      co.keepAliveInterval = 10;
      co.cleansession = 1;
      co.connectTimeout = 5;
      co.MQTTVersion = MQTTVERSION_3_1_1;
      co.onFailure = &MqttCallbacks::connect_failed;
      co.context = this;
      if (!o_.user.empty()) co.username = o_.user.c_str();
      if (!o_.password.empty()) co.password = o_.password.c_str();
      MQTTAsync_willOptions will = MQTTAsync_willOptions_initializer;
      if (!o_.will.topic.empty()) {
        will.topicName = o_.will.topic.c_str();
        will.message = o_.will.payload.c_str();
        will.retained = o_.will.retained;
        will.qos = o_.will.qos;
        co.will = &will;
      }
      MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
      if (o_.tls) co.ssl = &ssl;
      const int rc = MQTTAsync_connect(handle, &co);
      lock.lock();
      if (rc != MQTTASYNC_SUCCESS) {
        connecting_ = false;
        if (!warned_) spdlog::warn("mqtt: cannot connect to {} (code {}); retrying", uri(), rc);
        warned_ = true;
      }
      next_connect = std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                                            std::chrono::duration<double>(backoff_s));
      backoff_s = std::min(10.0, backoff_s * 2);
      continue;
    }
    wake_.wait_for(lock, std::chrono::milliseconds(100));
  }
}

void MqttClient::publish(MqttMessage m) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closing_) return;
    if (o_.capacity == 0 && !connected_) {
      ++dropped_;
      return;
    }
    if (push_dropping_oldest(queue_, std::move(m), o_.capacity)) ++dropped_;
  }
  wake_.notify_all();
}

size_t MqttClient::queued() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return queue_.size();
}

void MqttClient::close(const MqttMessage& last) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closing_) return;
    if (!last.topic.empty()) queue_.push_back(last);
    closing_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();  // sends what is queued while connected
  size_t left = 0;
  std::string why;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    left = queue_.size();
    why = last_failure_;
  }
  // "Unreachable" would mislead when the broker answered and refused us.
  if (left)
    spdlog::warn("mqtt: {} message(s) not sent: no connection to {} at exit ({})", left, uri(),
                 why.empty() ? "unreachable" : why);
  auto handle = static_cast<MQTTAsync>(client_);
  if (MQTTAsync_isConnected(handle)) {
    // Up to 2 s for the messages in flight to be acknowledged (Paho's own disconnect
    // time-out waits in steps of a second), then a clean disconnect, so that the broker does
    // not send the Will.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (std::chrono::steady_clock::now() < deadline) {
      MQTTAsync_token* tokens = nullptr;
      if (MQTTAsync_getPendingTokens(handle, &tokens) != MQTTASYNC_SUCCESS) break;
      const bool pending = tokens && tokens[0] != -1;
      MQTTAsync_free(tokens);
      if (!pending) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    disconnect_done_ = std::make_unique<Done>();
    MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
    d.timeout = 0;
    d.context = disconnect_done_.get();
    d.onSuccess = [](void* p, MQTTAsync_successData*) { static_cast<Done*>(p)->set(); };
    d.onFailure = [](void* p, MQTTAsync_failureData*) { static_cast<Done*>(p)->set(); };
    if (MQTTAsync_disconnect(handle, &d) == MQTTASYNC_SUCCESS) disconnect_done_->wait(std::chrono::milliseconds(2000));
  }
  is_connected_ = false;
}

}  // namespace maskwatch
