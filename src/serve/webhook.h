// Alert webhooks: POSTs JSON to http(s) URLs on a thread of its own, so that a slow or dead
// receiver never stalls the frame loop. Each delivery is tried up to 4 times (time-outs 3 s
// to connect, 5 s to answer; 1, 2, 4 s between tries); a 2xx answer is success. At most
// 100 deliveries wait; beyond that the oldest is dropped (and logged). Stopping cuts a
// delivery in progress short.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

namespace httplib {
class Client;
}

namespace maskwatch {

class WebhookSender {
 public:
  WebhookSender();
  ~WebhookSender();  // gives up on what waits (logged), within a second
  WebhookSender(const WebhookSender&) = delete;
  WebhookSender& operator=(const WebhookSender&) = delete;

  void post(const std::string& url, const std::string& json_body);
  int64_t delivered() const { return delivered_; }
  int64_t failed() const { return failed_; }

 private:
  void run();
  bool deliver(const std::string& url, const std::string& body);

  struct Job {
    std::string url, body;
  };
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> jobs_;
  std::atomic<bool> stop_{false};
  httplib::Client* current_ = nullptr;  // the delivery in progress
  std::atomic<int64_t> delivered_{0}, failed_{0};
  std::thread thread_;
};

// "https://host:8443/path?q" -> {"https://host:8443", "/path?q"}; throws Error if not http(s).
std::pair<std::string, std::string> split_url(const std::string& url);

}  // namespace maskwatch
