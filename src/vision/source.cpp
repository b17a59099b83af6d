#include "vision/source.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include <sys/stat.h>

#include "media/image_io.h"
#include "media/v4l2_camera.h"
#include "media/video_reader.h"
#include "util/error.h"
#include "vision/capture.h"

namespace maskwatch {
namespace {

// serve's `loop: true` opens an image source again on every pass (a single photo once a
// second): what is wrong with an image is said the first time, then at debug level.
void warn_once(const std::string& line) {
  static std::mutex mutex;
  static std::set<std::string> said;
  bool first = false;
  {
    std::lock_guard<std::mutex> lock(mutex);
    first = said.insert(line).second;
  }
  if (first)
    spdlog::warn("{}", line);
  else
    spdlog::debug("{}", line);
}

class VideoFileSource : public FrameSource {
 public:
  VideoFileSource(const std::string& path, const SourceOptions& o) : path_(path) {
    if (!std::filesystem::exists(path)) throw Error("video file not found: " + path);
    VideoReaderOptions ro;
    ro.decoder_threads = o.decoder_threads;
    if (!reader_.open(path, ro))
      throw Error("cannot open video " + path + " (not a video, or a codec FFmpeg lacks: " + reader_.error() + ")");
    fps_ = reader_.fps();
    if (!(fps_ > 0 && fps_ < 1000)) fps_ = 30;
    // A file that opens but yields no frame is as bad as one that does not open.
    if (!reader_.read(first_) || first_.empty()) throw Error("cannot decode any frame of " + path);
    first_time_ = reader_.frame_time_s();
  }
  bool read(SourceFrame& out) override {
    cv::Mat frame;
    double t = first_time_;
    if (!first_.empty()) {
      frame = first_;
      first_.release();
    } else if (!reader_.read(frame) || frame.empty()) {
      warn_of_missing_frames();
      return false;
    } else {
      t = reader_.frame_time_s();
    }
    out.image = frame;
    out.index = next_++;
    // Media time from the frame's timestamp (phones record at a variable frame rate: index /
    // average fps put events and alerts seconds off); index / fps when the file has none.
    // Never backwards, so durations stay positive.
    out.time_s = std::isfinite(t) ? std::max(t, last_time_) : static_cast<double>(out.index) / fps_;
    last_time_ = out.time_s;
    return true;
  }
  bool live() const override { return false; }
  double fps() const override { return fps_; }
  std::string description() const override { return fmt::format("video file {} ({:.1f} fps)", path_, fps_); }

 private:
  // Said once at the end: a corrupt file that decodes half its frames ended as if whole.
  void warn_of_missing_frames() {
    const int64_t listed = reader_.listed_frames();
    const bool short_of_listed = listed > 0 && next_ + std::max<int64_t>(2, listed / 100) <= listed;
    if (warned_ || (reader_.damaged_packets() == 0 && !short_of_listed)) return;
    warned_ = true;
    spdlog::warn("{}: {} frames read{}{}: the file is damaged or cut short (or trimmed by an edit list)", path_, next_,
                 listed > next_ ? fmt::format(" of the {} its container lists", listed) : "",
                 reader_.damaged_packets() ? fmt::format(", {} damaged packets skipped", reader_.damaged_packets())
                                           : "");
  }

  std::string path_;
  bool warned_ = false;
  VideoReader reader_;
  cv::Mat first_;
  double first_time_ = 0, last_time_ = 0;
  double fps_ = 30;
  int64_t next_ = 0;
};

// Still images, one frame each: a folder's, or one photo (read as `detect` reads it, EXIF
// orientation included; FFmpeg would read a JPEG as a video frame, sideways if it was tagged).
class ImageFolderSource : public FrameSource {
 public:
  ImageFolderSource(const std::string& dir, double fps) : what_("image folder " + dir), fps_(fps > 0 ? fps : 1.0) {
    files_ = list_image_files(dir);
    if (files_.empty()) throw Error("no image files in folder " + dir);
  }
  // One image, decoded now: one that cannot be read is an error at the start, as a video's is.
  ImageFolderSource(const std::filesystem::path& file, double fps)
      : what_("image " + file.string()), single_(true), files_{file}, fps_(fps > 0 ? fps : 1.0) {
    std::string why;
    first_ = load_image(file, &why, &first_warning_);
    if (first_.empty()) throw Error("cannot read image " + file.string() + ": " + why);
  }
  bool read(SourceFrame& out) override {
    while (pos_ < files_.size()) {
      const auto& f = files_[pos_++];
      std::string why, warning = first_warning_;
      cv::Mat img = first_.empty() ? load_image(f, &why, &warning) : first_;
      first_.release();
      first_warning_.clear();
      if (img.empty()) {
        warn_once(fmt::format("skipping {}: {}", f.string(), why));
        continue;
      }
      if (!warning.empty()) warn_once(fmt::format("{}: {}", f.string(), warning));
      out.image = img;
      out.index = next_++;
      out.time_s = static_cast<double>(out.index) / fps_;
      return true;
    }
    return false;
  }
  bool live() const override { return false; }
  double fps() const override { return fps_; }
  std::string description() const override {
    return single_ ? what_ : fmt::format("{} ({} images)", what_, files_.size());
  }

 private:
  std::string what_;
  bool single_ = false;
  cv::Mat first_;  // the single image, read when opened
  std::string first_warning_;  // ... and what its decoder said (a cut JPEG), told at its frame
  std::vector<std::filesystem::path> files_;
  double fps_;
  size_t pos_ = 0;
  int64_t next_ = 0;
};

// A camera (V4L2Camera, or FFmpeg when it offers neither YUYV nor MJPEG), a stream or a FIFO
// (FFmpeg), read directly: each read() blocks until the next frame or a time-out.
class DeviceSource : public FrameSource {
 public:
  DeviceSource(std::string spec, int camera_index, const SourceOptions& o)
      : spec_(std::move(spec)), camera_(camera_index), opts_(o) {
    if (!open())
      throw Error(is_camera()
                      ? fmt::format("cannot open camera {} (missing, busy, or no permission: {})", spec_, open_error_)
                      : fmt::format("cannot open stream {} (no answer within {:.0f} s, or not a stream: {})", spec_,
                                    o.open_timeout_ms / 1000.0, open_error_));
  }
  bool read(SourceFrame& out) override {
    cv::Mat frame;
    const bool got = camera_device_.is_open() ? camera_device_.read(frame, opts_.read_timeout_ms)
                                              : cap_.is_open() && cap_.read(frame);
    if (!got || frame.empty()) return false;
    if (!camera_device_.is_open() && cap_.is_recording()) pace(cap_.frame_time_s());
    out.image = frame;
    out.index = next_++;
    return true;
  }
  bool live() const override { return true; }
  double fps() const override { return fps_; }
  std::string description() const override {
    return fmt::format("{} {} ({}x{}, {:.0f} fps)", is_camera() ? "camera" : "stream", spec_, width_, height_, fps_);
  }
  bool finished() const override { return !camera_device_.is_open() && cap_.ended_recording(); }

 private:
  bool is_camera() const { return camera_ >= 0 || spec_.rfind("/dev/video", 0) == 0; }
  bool open() {
    VideoReaderOptions o;
    o.decoder_threads = opts_.decoder_threads;
    o.open_timeout_ms = opts_.open_timeout_ms;
    o.read_timeout_ms = opts_.read_timeout_ms;
    const std::string url = camera_ >= 0 ? "/dev/video" + std::to_string(camera_) : spec_;
    if (is_camera()) {
      if (camera_device_.open(url, opts_.width, opts_.height)) {
        width_ = camera_device_.width();
        height_ = camera_device_.height();
        fps_ = camera_device_.fps();
        return true;
      }
      open_error_ = camera_device_.error();
      if (camera_device_.device_failed()) return false;  // FFmpeg would fail the same way
      spdlog::info("{}; reading it through FFmpeg", open_error_);
      o.camera = true;
      o.width = opts_.width;
      o.height = opts_.height;
      o.read_timeout_ms = 0;  // a camera's read blocks in the driver until the next frame
    }
    if (!cap_.open(url, o)) {
      open_error_ = cap_.error();
      return false;
    }
    width_ = cap_.width();
    height_ = cap_.height();
    fps_ = cap_.fps();
    if (!(fps_ > 0 && fps_ < 1000)) fps_ = 0;  // MPEG-TS reports its 90 kHz clock: unknown
    return true;
  }

  // A recording behind a URL is given at its own pace, as a live feed would be: read as fast as
  // it decodes, all but a few of its frames were dropped as stale.
  void pace(double t) {
    if (!std::isfinite(t)) return;
    const auto now = std::chrono::steady_clock::now();
    if (!paced_ || t < first_time_) {
      paced_ = true;
      first_time_ = t;
      started_ = now;
      return;
    }
    const auto due = started_ + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                    std::chrono::duration<double>(t - first_time_));
    if (due > now)
      std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(due - now, std::chrono::seconds(1)));
  }

  std::string spec_;
  int camera_ = -1;
  SourceOptions opts_;
  bool paced_ = false;
  double first_time_ = 0;
  std::chrono::steady_clock::time_point started_;
  V4l2Camera camera_device_;
  VideoReader cap_;
  int width_ = 0, height_ = 0;
  double fps_ = 0;
  int64_t next_ = 0;
  std::string open_error_;  // why the open failed (V4L2's or FFmpeg's words)
};

}  // namespace

bool is_fifo_path(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISFIFO(st.st_mode);
}

bool is_webcam_index(const std::string& s) {
  return !s.empty() && s.size() < 4 && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

bool is_url_spec(const std::string& spec) { return spec.find("://") != std::string::npos; }

bool is_live_spec(const std::string& spec) {
  return is_webcam_index(spec) || spec.rfind("/dev/video", 0) == 0 || is_url_spec(spec) || is_fifo_path(spec);
}

std::unique_ptr<FrameSource> open_source(const std::string& spec, const SourceOptions& o) {
  if (!spec.empty() && is_live_spec(spec)) return open_live_source(spec, o);
  return open_reader(spec, o);
}

std::unique_ptr<FrameSource> open_reader(const std::string& spec, const SourceOptions& o) {
  if (spec.empty()) throw Error("no source given");
  if (is_live_spec(spec)) return std::make_unique<DeviceSource>(spec, is_webcam_index(spec) ? std::stoi(spec) : -1, o);
  std::error_code ec;
  if (std::filesystem::is_directory(spec, ec)) return std::make_unique<ImageFolderSource>(spec, o.folder_fps);
  if (is_image_file(spec) && std::filesystem::is_regular_file(spec, ec))
    return std::make_unique<ImageFolderSource>(std::filesystem::path(spec), o.folder_fps);
  return std::make_unique<VideoFileSource>(spec, o);
}

}  // namespace maskwatch
