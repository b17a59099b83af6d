#include "serve/webhook.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <regex>

#include "serve/config.h"
#include "util/bounded_queue.h"
#include "util/error.h"

namespace maskwatch {

std::pair<std::string, std::string> split_url(const std::string& url) {
  // scheme, optional user@, host (name, IPv4 or [IPv6]), optional :port, optional /path;
  // no spaces or control characters anywhere.
  static const std::regex form(
      R"(^https?://(?:[^/@\s]*@)?(?:[A-Za-z0-9._~%-]+|\[[0-9A-Fa-f:.]+\])(?::([0-9]{1,5}))?(/\S*)?$)");
  std::smatch m;
  const bool control =
      std::any_of(url.begin(), url.end(), [](char c) { return std::iscntrl(static_cast<unsigned char>(c)); });
  if (control || !std::regex_match(url, m, form))
    throw Error("not an http(s) URL with a host and no spaces: " + hide_url_path(url));
  if (m[1].matched && (std::stoi(m[1]) < 1 || std::stoi(m[1]) > 65535))
    throw Error(fmt::format("port {} is not 1..65535 in {}", m[1].str(), hide_url_path(url)));
  const auto scheme_end = url.find("://");
  const auto path = url.find('/', scheme_end + 3);
  if (path == std::string::npos) return {url, "/"};
  return {url.substr(0, path), url.substr(path)};
}

WebhookSender::WebhookSender() : thread_([this] { run(); }) {}

WebhookSender::~WebhookSender() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
    if (!jobs_.empty()) spdlog::warn("webhook: {} alert(s) not delivered before stopping", jobs_.size());
    if (current_) current_->stop();  // a receiver that does not answer must not hold up the exit
  }
  wake_.notify_all();
  thread_.join();
}

void WebhookSender::post(const std::string& url, const std::string& json_body) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (const auto dropped = push_dropping_oldest(jobs_, Job{url, json_body}, 100)) {
      spdlog::warn("webhook: 100 alerts wait for delivery; dropping the oldest ({})", hide_url_path(dropped->url));
      ++failed_;
    }
  }
  wake_.notify_all();
}

bool WebhookSender::deliver(const std::string& url, const std::string& body) {
  const auto [base, path] = split_url(url);
  httplib::Client client(base);
  client.set_connection_timeout(3, 0);
  client.set_read_timeout(5, 0);
  client.set_write_timeout(5, 0);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stop_) return false;
    current_ = &client;  // the destructor may stop() it from another thread
  }
  const auto r = client.Post(path.c_str(), body, "application/json");
  {
    std::lock_guard<std::mutex> lock(mutex_);
    current_ = nullptr;
  }
  if (r && r->status >= 200 && r->status < 300) return true;
  if (!r && stop_) return false;
  spdlog::warn("webhook {}: {}", hide_url_path(url),
               r ? fmt::format("HTTP {}", r->status) : httplib::to_string(r.error()));
  return false;
}

void WebhookSender::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    wake_.wait(lock, [&] { return stop_.load() || !jobs_.empty(); });
    if (stop_) return;
    Job job = std::move(jobs_.front());
    jobs_.pop_front();
    bool ok = false;
    double backoff_s = 1;
    for (int attempt = 1; attempt <= 4 && !ok && !stop_; ++attempt) {
      lock.unlock();
      try {
        ok = deliver(job.url, job.body);
      } catch (const std::exception& e) {
        spdlog::warn("webhook {}: {}", hide_url_path(job.url), e.what());
      }
      lock.lock();
      if (!ok && attempt < 4) {
        wake_.wait_for(lock, std::chrono::duration<double>(backoff_s), [&] { return stop_.load(); });
        backoff_s *= 2;
      }
    }
    if (ok)
      ++delivered_;
    else {
      ++failed_;
      spdlog::error("webhook {}: alert not delivered after 4 tries", hide_url_path(job.url));
    }
  }
}

}  // namespace maskwatch
