#include "vision/source.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <opencv2/videoio.hpp>
#include <thread>

#include "data/image_io.h"
#include "util/error.h"

namespace maskwatch {
namespace {

using Clock = std::chrono::steady_clock;

class VideoFileSource : public FrameSource {
 public:
  explicit VideoFileSource(const std::string& path) : path_(path) {
    if (!std::filesystem::exists(path)) throw Error("video file not found: " + path);
    cap_.open(path, cv::CAP_FFMPEG);
    if (!cap_.isOpened()) throw Error("cannot open video " + path + " (not a video, or a codec FFmpeg lacks)");
    fps_ = cap_.get(cv::CAP_PROP_FPS);
    if (!(fps_ > 0 && fps_ < 1000)) fps_ = 30;
    // A file that opens but yields no frame is as bad as one that does not open.
    if (!cap_.read(first_) || first_.empty()) throw Error("cannot decode any frame of " + path);
  }
  bool read(SourceFrame& out) override {
    cv::Mat frame;
    if (!first_.empty()) {
      frame = first_;
      first_.release();
    } else if (!cap_.read(frame) || frame.empty()) {
      return false;
    }
    out.image = frame;
    out.index = next_++;
    out.time_s = static_cast<double>(out.index) / fps_;
    return true;
  }
  bool live() const override { return false; }
  double fps() const override { return fps_; }
  std::string description() const override { return fmt::format("video file {} ({:.1f} fps)", path_, fps_); }

 private:
  std::string path_;
  cv::VideoCapture cap_;
  cv::Mat first_;
  double fps_ = 30;
  int64_t next_ = 0;
};

class ImageFolderSource : public FrameSource {
 public:
  ImageFolderSource(const std::string& dir, double fps) : dir_(dir), fps_(fps > 0 ? fps : 1.0) {
    for (const auto& e : std::filesystem::directory_iterator(dir))
      if (e.is_regular_file() && is_image_file(e.path())) files_.push_back(e.path());
    std::sort(files_.begin(), files_.end());
    if (files_.empty()) throw Error("no image files in folder " + dir);
  }
  bool read(SourceFrame& out) override {
    while (pos_ < files_.size()) {
      const auto& f = files_[pos_++];
      std::string why;
      cv::Mat img = load_image(f, &why);
      if (img.empty()) {
        spdlog::warn("skipping {}: {}", f.string(), why);
        continue;
      }
      out.image = img;
      out.index = next_++;
      out.time_s = static_cast<double>(out.index) / fps_;
      return true;
    }
    return false;
  }
  bool live() const override { return false; }
  double fps() const override { return fps_; }
  std::string description() const override { return fmt::format("image folder {} ({} images)", dir_, files_.size()); }

 private:
  std::string dir_;
  std::vector<std::filesystem::path> files_;
  double fps_;
  size_t pos_ = 0;
  int64_t next_ = 0;
};

// Cameras and streams: a capture thread keeps only the newest frame.
class LiveSource : public FrameSource {
 public:
  LiveSource(std::string spec, int camera_index, const SourceOptions& o)
      : spec_(std::move(spec)), camera_(camera_index), opts_(o), start_(Clock::now()) {
    if (!open()) {
      throw Error(camera_ >= 0 || spec_.rfind("/dev/video", 0) == 0
                      ? fmt::format("cannot open camera {} (missing, busy, or no permission)", spec_)
                      : fmt::format("cannot open stream {}", spec_));
    }
    worker_ = std::thread([this] { capture_loop(); });
  }
  ~LiveSource() override {
    stop_ = true;
    cv_.notify_all();
    if (worker_.joinable()) worker_.join();
  }
  bool read(SourceFrame& out) override {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [&] { return has_new_ || finished_; });
    if (!has_new_) return false;
    out.image = latest_;
    out.index = latest_index_;
    out.time_s = latest_time_;
    has_new_ = false;
    return true;
  }
  bool live() const override { return true; }
  double fps() const override { return fps_; }
  std::string description() const override {
    return fmt::format("{} {} ({}x{}, {:.0f} fps)", camera_ >= 0 || spec_.rfind("/dev/", 0) == 0 ? "camera" : "stream",
                       spec_, width_, height_, fps_);
  }
  int64_t dropped() const override { return dropped_; }

 private:
  bool open() {
    if (camera_ >= 0) cap_.open(camera_, cv::CAP_V4L2);
    else if (spec_.rfind("/dev/video", 0) == 0) cap_.open(spec_, cv::CAP_V4L2);
    else cap_.open(spec_, cv::CAP_FFMPEG);
    if (!cap_.isOpened()) return false;
    if (camera_ >= 0 || spec_.rfind("/dev/video", 0) == 0) {
      cap_.set(cv::CAP_PROP_FRAME_WIDTH, opts_.width);
      cap_.set(cv::CAP_PROP_FRAME_HEIGHT, opts_.height);
    }
    width_ = static_cast<int>(cap_.get(cv::CAP_PROP_FRAME_WIDTH));
    height_ = static_cast<int>(cap_.get(cv::CAP_PROP_FRAME_HEIGHT));
    fps_ = cap_.get(cv::CAP_PROP_FPS);
    return true;
  }
  void capture_loop() {
    int failures = 0;
    double backoff_s = 0.5;
    int64_t index = 0;
    while (!stop_) {
      cv::Mat frame;
      if (cap_.isOpened() && cap_.read(frame) && !frame.empty()) {
        failures = 0;
        backoff_s = 0.5;
        const double t = std::chrono::duration<double>(Clock::now() - start_).count();
        std::lock_guard<std::mutex> lock(mutex_);
        if (has_new_) ++dropped_;  // the consumer did not take the previous one: keep only the newest
        latest_ = frame;
        latest_index_ = index++;
        latest_time_ = t;
        has_new_ = true;
        cv_.notify_all();
        continue;
      }
      // Lost: reopen with exponential backoff, give up after reconnect_attempts in a row.
      if (++failures > opts_.reconnect_attempts) {
        spdlog::error("{}: no frames after {} reconnect attempts, giving up", spec_, opts_.reconnect_attempts);
        break;
      }
      spdlog::warn("{}: no frame, reconnecting in {:.1f} s (attempt {}/{})", spec_, backoff_s, failures,
                   opts_.reconnect_attempts);
      for (double waited = 0; waited < backoff_s && !stop_; waited += 0.05)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      backoff_s = std::min(backoff_s * 2, 8.0);
      cap_.release();
      if (!stop_) open();
    }
    std::lock_guard<std::mutex> lock(mutex_);
    finished_ = true;
    cv_.notify_all();
  }

  std::string spec_;
  int camera_;
  SourceOptions opts_;
  Clock::time_point start_;
  cv::VideoCapture cap_;
  int width_ = 0, height_ = 0;
  double fps_ = 0;
  std::mutex mutex_;
  std::condition_variable cv_;
  cv::Mat latest_;
  int64_t latest_index_ = 0, dropped_ = 0;
  double latest_time_ = 0;
  bool has_new_ = false, finished_ = false;
  std::atomic<bool> stop_{false};
  std::thread worker_;
};

bool all_digits(const std::string& s) {
  return !s.empty() && s.size() < 4 && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

}  // namespace

std::unique_ptr<FrameSource> open_source(const std::string& spec, const SourceOptions& o) {
  if (spec.empty()) throw Error("no source given");
  if (all_digits(spec)) return std::make_unique<LiveSource>(spec, std::stoi(spec), o);
  if (spec.rfind("/dev/video", 0) == 0) return std::make_unique<LiveSource>(spec, -1, o);
  if (spec.find("://") != std::string::npos) return std::make_unique<LiveSource>(spec, -1, o);
  std::error_code ec;
  if (std::filesystem::is_directory(spec, ec)) return std::make_unique<ImageFolderSource>(spec, o.folder_fps);
  return std::make_unique<VideoFileSource>(spec);
}

}  // namespace maskwatch
