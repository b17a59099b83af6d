#include "serve/camera_feed.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "util/log_text.h"
#include "vision/source.h"

namespace maskwatch {

using Clock = CameraFeed::Clock;

namespace {

// A FIFO that nobody writes to blocks open(2) for ever: FFmpeg's file protocol opens it
// blocking and no interrupt callback reaches a blocked system call. Opening the FIFO for
// writing (non-blocking) completes such a reader's open, and closing it at once gives the
// reader end-of-file, so the source fails to open and the capture thread sees the stop.
// Without a reader the open fails with ENXIO, harmlessly.
void wake_fifo_reader(const std::string& source) {
  if (!is_fifo_path(source)) return;
  const int fd = ::open(source.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd >= 0) ::close(fd);
}

}  // namespace

CameraFeed::CameraFeed(CameraConfig config, std::condition_variable* wake, StatusCallback on_status)
    : config_(std::move(config)), wake_(wake), on_status_(std::move(on_status)) {}

void CameraFeed::start() {
  if (!config_.enabled) {
    set_status(CameraStatus::Disabled, "disabled in the config");
    return;
  }
  thread_ = std::thread([this] {
    loop();
    std::lock_guard<std::mutex> lock(mutex_);
    finished_ = true;
    stop_cv_.notify_all();
  });
}

CameraFeed::~CameraFeed() {
  std::unique_lock<std::mutex> lock(mutex_);
  stop_ = true;
  cancel_ = true;  // a live source's read() returns at once
  stop_cv_.notify_all();
  // Until the thread has left: it may be about to enter a blocking open, so wake it again.
  while (thread_.joinable() && !finished_) {
    lock.unlock();
    wake_fifo_reader(config_.source);
    lock.lock();
    stop_cv_.wait_for(lock, std::chrono::milliseconds(50), [&] { return finished_; });
  }
  lock.unlock();
  if (thread_.joinable()) thread_.join();
}

bool CameraFeed::take(cv::Mat& frame, int64_t& index, double& time_s, Clock::time_point* captured) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!has_new_) return false;
  frame = std::move(latest_);
  latest_ = cv::Mat();
  index = latest_index_;
  time_s = latest_time_;
  if (captured) *captured = latest_captured_;
  has_new_ = false;
  return true;
}

CameraStatus CameraFeed::status() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return status_;
}

std::string CameraFeed::status_detail() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return detail_;
}

double CameraFeed::camera_fps() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return status_ == CameraStatus::Online ? arrivals_.rate(Clock::now()) : 0.0;
}

void CameraFeed::set_status(CameraStatus s, const std::string& detail) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (s == status_ && s != CameraStatus::Disabled) return;
    status_ = s;
    detail_ = redact_url(detail);
    arrivals_.reset();  // a new run of frames: no rate from the last one
  }
  // The detail is stored in history and served by the API: never with a stream's password.
  if (on_status_) on_status_(s, redact_url(detail));
}

void CameraFeed::note_waiting(const std::string& why) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    detail_ = redact_url(why);
  }
  spdlog::info("camera {}: {}", config_.name, why);
}

bool CameraFeed::sleep_for(double seconds) {
  std::unique_lock<std::mutex> lock(mutex_);
  stop_cv_.wait_for(lock, std::chrono::duration<double>(seconds), [&] { return stop_; });
  return !stop_;
}

void CameraFeed::loop() {
  double backoff_s = 1;
  int64_t index = 0;
  const auto started = Clock::now();
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stop_) break;
    }
    std::unique_ptr<FrameSource> source;
    try {
      SourceOptions so;
      so.width = config_.width;
      so.height = config_.height;
      so.reconnect_for_s = 5;  // the feed does its own reconnecting, with the camera's backoff
      so.cancel = &cancel_;
      // Opening a FIFO blocks until a writer opens it, with nothing to report meanwhile.
      if (is_fifo_path(config_.source))
        note_waiting("waiting for a writer on the FIFO (open blocks until one opens it for writing)");
      source = open_source(config_.source, so);
    } catch (const std::exception& e) {
      if (!sleep_for(0)) break;  // stopping: the open was interrupted on purpose
      set_status(CameraStatus::Offline, e.what());
      spdlog::warn("camera {}: {}; retrying in {:.0f} s", config_.name, e.what(), backoff_s);
      if (!sleep_for(backoff_s)) break;
      backoff_s = std::min(backoff_s * 2, config_.reconnect_max_s);
      continue;
    }
    const bool paced = !source->live();  // a file: deliver frames at its own rate
    const double period = paced && source->fps() > 0 ? 1.0 / source->fps() : 0;
    auto next_due = Clock::now();
    SourceFrame f;
    bool got_any = false;
    int64_t source_dropped = 0;
    while (true) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (stop_) break;
      }
      if (!source->read(f)) break;
      // A live source keeps only its newest frame too: what it dropped before we took one
      // was dropped for this camera as well.
      if (const int64_t d = source->dropped(); d > source_dropped) dropped_ += d - source_dropped, source_dropped = d;
      if (!got_any) {
        got_any = true;
        backoff_s = 1;
        set_status(CameraStatus::Online, source->description());
      }
      if (period > 0) {
        next_due += std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(period));
        const double wait = std::chrono::duration<double>(next_due - Clock::now()).count();
        if (wait > 0 && !sleep_for(wait)) break;
        if (wait < -1) next_due = Clock::now();  // fell far behind: do not rush to catch up
      }
      if (config_.mirror) cv::flip(f.image, f.image, 1);
      const auto now = Clock::now();
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (has_new_) ++dropped_;
        latest_ = f.image;
        latest_index_ = index++;
        latest_time_ = std::chrono::duration<double>(now - started).count();
        latest_captured_ = now;
        has_new_ = true;
        arrivals_.tick(now);
      }
      ++captured_;
      wake_->notify_all();
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stop_) break;
    }
    if (got_any && paced && config_.loop) continue;  // the demo clip again, at once
    if (got_any && paced) {
      // A file or folder that was read to its end is done: opening it again would show the
      // same frames again and flap online/offline with every pass. (A FIFO is a live source,
      // opened again below: its next writer brings new frames.)
      const std::string what = std::filesystem::is_directory(config_.source) ? "image folder" : "video file";
      set_status(CameraStatus::Offline, what + " ended; not read again (loop: false)");
      spdlog::info("camera {}: {} ended; not read again (loop: false)", config_.name, what);
      while (sleep_for(3600)) {}
      break;
    }
    const std::string why = is_fifo_path(config_.source) ? "the FIFO's writer closed it"
                            : paced                      ? "video file ended"
                            : source->failure().empty()  ? "source ended"
                                                         : source->failure();
    set_status(CameraStatus::Offline, why);
    spdlog::warn("camera {}: {}; reconnecting in {:.0f} s", config_.name, why, backoff_s);
    if (!sleep_for(backoff_s)) break;
    backoff_s = std::min(backoff_s * 2, config_.reconnect_max_s);
  }
}

}  // namespace maskwatch
