#include "vision/source.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include <sys/stat.h>

#include "media/image_io.h"
#include "media/v4l2_camera.h"
#include "media/video_reader.h"
#include "util/error.h"

namespace maskwatch {
namespace {

using Clock = std::chrono::steady_clock;
constexpr double kStallLogSeconds = 2.0;  // live source quiet this long (connection open): logged as a stall

class VideoFileSource : public FrameSource {
 public:
  explicit VideoFileSource(const std::string& path) : path_(path) {
    if (!std::filesystem::exists(path)) throw Error("video file not found: " + path);
    if (!reader_.open(path))
      throw Error("cannot open video " + path + " (not a video, or a codec FFmpeg lacks: " + reader_.error() + ")");
    fps_ = reader_.fps();
    if (!(fps_ > 0 && fps_ < 1000)) fps_ = 30;
    // A file that opens but yields no frame is as bad as one that does not open.
    if (!reader_.read(first_) || first_.empty()) throw Error("cannot decode any frame of " + path);
  }
  bool read(SourceFrame& out) override {
    cv::Mat frame;
    if (!first_.empty()) {
      frame = first_;
      first_.release();
    } else if (!reader_.read(frame) || frame.empty()) {
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
  VideoReader reader_;
  cv::Mat first_;
  double fps_ = 30;
  int64_t next_ = 0;
};

class ImageFolderSource : public FrameSource {
 public:
  ImageFolderSource(const std::string& dir, double fps) : dir_(dir), fps_(fps > 0 ? fps : 1.0) {
    files_ = list_image_files(dir);
    if (files_.empty()) throw Error("no image files in folder " + dir);
  }
  bool read(SourceFrame& out) override {
    while (pos_ < files_.size()) {
      const auto& f = files_[pos_++];
      std::string why, warning;
      cv::Mat img = load_image(f, &why, &warning);
      if (img.empty()) {
        spdlog::warn("skipping {}: {}", f.string(), why);
        continue;
      }
      if (!warning.empty()) spdlog::warn("{}: {}", f.string(), warning);
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

// Cameras and streams: a capture thread keeps only the newest frame. Its state lives in a
// shared block so that, if the thread is stuck inside FFmpeg when we quit, it can be left to
// finish on its own (its read times out) instead of holding up the exit.
class LiveSource : public FrameSource {
 public:
  LiveSource(std::string spec, int camera_index, const SourceOptions& o) : s_(std::make_shared<State>()) {
    s_->spec = std::move(spec);
    s_->camera = camera_index;
    s_->opts = o;
    s_->start = s_->last_frame = Clock::now();
    // A FIFO's open blocks until a writer comes (and its probe until the writer sends): the
    // capture thread does it, so closing the source never waits on it.
    s_->open_in_thread = is_fifo_path(s_->spec);
    if (!s_->open_in_thread && !s_->open()) {
      throw Error(
          s_->is_camera()
              ? fmt::format("cannot open camera {} (missing, busy, or no permission: {})", s_->spec, s_->open_error)
              : fmt::format("cannot open stream {} (no answer within {:.0f} s, or not a stream: {})", s_->spec,
                            o.open_timeout_ms / 1000.0, s_->open_error));
    }
    worker_ = std::thread([s = s_] { s->capture_loop(); });
  }
  ~LiveSource() override {
    {
      std::lock_guard<std::mutex> lock(s_->mutex);
      s_->stop = true;
    }
    s_->cv.notify_all();
    std::unique_lock<std::mutex> lock(s_->mutex);
    const bool done = s_->cv.wait_for(lock, std::chrono::milliseconds(500), [&] { return s_->finished; });
    lock.unlock();
    if (done)
      worker_.join();
    else
      worker_.detach();  // blocked in a read that will time out; it owns a share of the state
  }
  bool read(SourceFrame& out) override {
    std::unique_lock<std::mutex> lock(s_->mutex);
    const auto cancelled = [&] { return s_->opts.cancel && s_->opts.cancel->load(); };
    while (!s_->has_new && !s_->finished && !cancelled()) {
      s_->cv.wait_for(lock, std::chrono::milliseconds(100));
      // A server that stops sending keeps the connection open: say so once, while the
      // capture thread still waits for its read to time out.
      const double quiet = std::chrono::duration<double>(Clock::now() - s_->last_frame).count();
      if (quiet > kStallLogSeconds && !s_->stall_logged && s_->failures == 0 && s_->latest_index > 0) {
        s_->stall_logged = true;
        spdlog::warn("{}: stalled, no frame for {:.0f} s", s_->spec, quiet);
      }
    }
    if (!s_->has_new) return false;
    out.image = s_->latest;
    out.index = s_->latest_index;
    out.time_s = s_->latest_time;
    s_->has_new = false;
    return true;
  }
  bool live() const override { return true; }
  double fps() const override { return s_->fps; }
  std::string description() const override {
    return fmt::format("{} {} ({}x{}, {:.0f} fps)", s_->is_camera() ? "camera" : "stream", s_->spec, s_->width,
                       s_->height, s_->fps);
  }
  int64_t dropped() const override {
    std::lock_guard<std::mutex> lock(s_->mutex);
    return s_->dropped;
  }
  std::string failure() const override {
    std::lock_guard<std::mutex> lock(s_->mutex);
    return s_->failure;
  }

 private:
  struct State {
    std::string spec;
    int camera = -1;
    SourceOptions opts;
    Clock::time_point start, last_frame;
    // Used by the capture thread only (after construction): a camera is read by V4l2Camera,
    // or by FFmpeg when it offers neither YUYV nor MJPEG; streams by FFmpeg.
    V4l2Camera camera_device;
    VideoReader cap;
    int width = 0, height = 0;
    double fps = 0;
    mutable std::mutex mutex;
    std::condition_variable cv;
    cv::Mat latest;
    int64_t latest_index = 0, dropped = 0;
    double latest_time = 0;
    bool has_new = false, finished = false, stop = false;
    bool stall_logged = false;  // since the last frame
    int failures = 0;           // failed reads/reopens in a row, since the last frame
    bool open_in_thread = false;  // a FIFO: the capture thread opens it
    std::string failure;
    std::string open_error;  // why the last open failed (V4L2's or FFmpeg's words)

    bool is_camera() const { return camera >= 0 || spec.rfind("/dev/video", 0) == 0; }
    bool stopping() {
      std::lock_guard<std::mutex> lock(mutex);
      return stop;
    }
    bool open() {
      VideoReaderOptions o;
      o.open_timeout_ms = opts.open_timeout_ms;
      o.read_timeout_ms = opts.read_timeout_ms;
      const std::string url = camera >= 0 ? "/dev/video" + std::to_string(camera) : spec;
      if (is_camera()) {
        if (camera_device.open(url, opts.width, opts.height)) {
          width = camera_device.width();
          height = camera_device.height();
          fps = camera_device.fps();
          return true;
        }
        open_error = camera_device.error();
        if (camera_device.device_failed()) return false;  // FFmpeg would fail the same way
        spdlog::info("{}; reading it through FFmpeg", open_error);
        o.camera = true;
        o.width = opts.width;
        o.height = opts.height;
        o.read_timeout_ms = 0;  // a camera's read blocks in the driver until the next frame
      }
      if (!cap.open(url, o)) {
        open_error = cap.error();
        return false;
      }
      width = cap.width();
      height = cap.height();
      fps = cap.fps();
      if (!(fps > 0 && fps < 1000)) fps = 0;  // MPEG-TS reports its 90 kHz clock: unknown
      return true;
    }
    // Sleeps up to `s` seconds, waking early when asked to stop. False when stopping.
    bool pause(double s) {
      std::unique_lock<std::mutex> lock(mutex);
      cv.wait_for(lock, std::chrono::duration<double>(s), [&] { return stop; });
      return !stop;
    }
    void capture_loop() {
      double backoff_s = 0.5;
      int64_t index = 0;
      if (open_in_thread && !stopping() && !open()) {  // the reconnect path below tries again
        std::lock_guard<std::mutex> lock(mutex);
        failure = fmt::format("{}: {}", spec, open_error);
      }
      while (!stopping()) {
        cv::Mat frame;
        const bool got = camera_device.is_open() ? camera_device.read(frame, opts.read_timeout_ms)
                                                 : cap.is_open() && cap.read(frame);
        if (got && !frame.empty()) {
          backoff_s = 0.5;
          const auto now = Clock::now();
          std::lock_guard<std::mutex> lock(mutex);
          failures = 0;
          stall_logged = false;
          if (has_new) ++dropped;  // the consumer did not take the previous one: keep only the newest
          latest = frame;
          latest_index = index++;
          latest_time = std::chrono::duration<double>(now - start).count();
          last_frame = now;
          has_new = true;
          cv.notify_all();
          continue;
        }
        const double since_frame = std::chrono::duration<double>(Clock::now() - last_frame).count();
        if (open_in_thread) {  // a FIFO's writer left (or never sent a stream): the owner opens it again
          std::lock_guard<std::mutex> lock(mutex);
          if (failure.empty()) failure = fmt::format("{}: the FIFO's writer closed it", spec);
          break;
        }
        if (opts.reconnect_for_s > 0 && since_frame >= opts.reconnect_for_s) {
          std::lock_guard<std::mutex> lock(mutex);
          failure = fmt::format("{}: lost, no frame for {:.0f} s (--reconnect-for {:g})", spec, since_frame,
                                opts.reconnect_for_s);
          spdlog::error("{}", failure);
          break;
        }
        int failed_before;
        {
          std::lock_guard<std::mutex> lock(mutex);
          failed_before = failures++;
        }
        if (failed_before > 0)
          spdlog::warn("{}: still no frame after {:.0f} s; reconnecting in {:.1f} s", spec, since_frame, backoff_s);
        else
          spdlog::warn("{}: stream ended, dropped or timed out; reconnecting in {:.1f} s", spec, backoff_s);
        if (!pause(backoff_s)) break;
        backoff_s = std::min(backoff_s * 2, 8.0);
        camera_device.close();
        cap.close();
        if (!stopping() && open()) spdlog::info("{}: reopened", spec);
      }
      std::lock_guard<std::mutex> lock(mutex);
      finished = true;
      cv.notify_all();
    }
  };

  std::shared_ptr<State> s_;
  std::thread worker_;
};

}  // namespace

bool is_fifo_path(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISFIFO(st.st_mode);
}

namespace {

bool all_digits(const std::string& s) {
  return !s.empty() && s.size() < 4 && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

}  // namespace

std::unique_ptr<FrameSource> open_source(const std::string& spec, const SourceOptions& o) {
  if (spec.empty()) throw Error("no source given");
  if (all_digits(spec)) return std::make_unique<LiveSource>(spec, std::stoi(spec), o);
  if (spec.rfind("/dev/video", 0) == 0) return std::make_unique<LiveSource>(spec, -1, o);
  if (spec.find("://") != std::string::npos || is_fifo_path(spec)) return std::make_unique<LiveSource>(spec, -1, o);
  std::error_code ec;
  if (std::filesystem::is_directory(spec, ec)) return std::make_unique<ImageFolderSource>(spec, o.folder_fps);
  return std::make_unique<VideoFileSource>(spec);
}

}  // namespace maskwatch
