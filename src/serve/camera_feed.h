// One camera of `serve`: a capture thread that keeps only the newest frame (as `run` does),
// paces video files at their own frame rate (a file stands in for a camera; `loop` starts it
// again at the end), and reconnects with exponential backoff when the source is lost.
// Status: "starting" until the first open, "online" while frames come, "offline" while
// reconnecting (or for good: a file or image folder that ended without `loop`), "disabled"
// when the config says so; every change calls on_status (from the capture thread), and
// status_detail() says why (also while "starting" waits for a FIFO's writer).
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <opencv2/core.hpp>
#include <string>
#include <thread>

#include "serve/config.h"
#include "serve/live_event.h"
#include "util/rate_meter.h"

namespace maskwatch {

class CameraFeed {
 public:
  using Clock = std::chrono::steady_clock;
  using StatusCallback = std::function<void(CameraStatus status, const std::string& detail)>;
  // `wake` is notified on every new frame (the inference worker waits on it).
  CameraFeed(CameraConfig config, std::condition_variable* wake, StatusCallback on_status);
  ~CameraFeed();  // stops and joins the capture thread, waking a source blocked in open
  CameraFeed(const CameraFeed&) = delete;
  CameraFeed& operator=(const CameraFeed&) = delete;

  void start();
  // Moves the newest frame out if there is one not taken yet; `captured`: when it arrived.
  bool take(cv::Mat& frame, int64_t& index, double& time_s, Clock::time_point* captured = nullptr);
  CameraStatus status() const;
  std::string status_detail() const;  // why the status is what it is (no password)
  const CameraConfig& config() const { return config_; }
  int64_t frames_captured() const { return captured_; }
  int64_t frames_dropped() const { return dropped_; }  // overwritten before the worker (or this feed, from a live source) took them
  double camera_fps() const;                           // frames that arrived in the last few seconds, per second

 private:
  void loop();
  void set_status(CameraStatus s, const std::string& detail);
  void note_waiting(const std::string& why);  // the status stays; its detail and one log line say why
  bool sleep_for(double seconds);             // false when stopping

  CameraConfig config_;
  std::condition_variable* wake_;
  StatusCallback on_status_;
  mutable std::mutex mutex_;
  std::condition_variable stop_cv_;
  cv::Mat latest_;
  int64_t latest_index_ = 0;
  double latest_time_ = 0;
  Clock::time_point latest_captured_{};
  bool has_new_ = false, stop_ = false;
  bool finished_ = false;            // the capture thread has left loop()
  CameraStatus status_ = CameraStatus::Starting;  // until the first open succeeds or fails
  std::string detail_;
  std::atomic<int64_t> captured_{0}, dropped_{0};
  std::atomic<bool> cancel_{false};         // makes a live source's read() return at once
  RateMeter arrivals_{std::chrono::seconds(5)};  // camera_fps: frames delivered, since the status last changed
  std::thread thread_;
};

}  // namespace maskwatch
