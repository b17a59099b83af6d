#include "serve/clip_recorder.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>

#include "media/image_codec.h"
#include "media/video_writer.h"
#include "util/error.h"
#include "util/files.h"
#include "util/stopwatch.h"
#include "vision/overlay.h"

namespace maskwatch {

namespace {
constexpr size_t kMaxOffers = 8;  // frames handed over and not yet encoded; more are dropped
constexpr int kJpegQuality = 75;

// Even sizes (H.264 4:2:0), at most `width` wide.
cv::Size clip_size(cv::Size in, int width) {
  const double s = in.width > width ? static_cast<double>(width) / in.width : 1.0;
  const auto even = [](double v) { return std::max(2, static_cast<int>(std::lround(v / 2)) * 2); };
  return {even(in.width * s), even(in.height * s)};
}
}  // namespace

std::string ClipRecorder::file_name(double time, const std::string& camera, const std::string& what) {
  return fmt::format("{:.0f}-{}-{}.mp4", time * 1000, camera, what);
}

ClipRecorder::ClipRecorder(const ClipConfig& config, std::filesystem::path dir, std::vector<std::string> classes,
                           std::function<double()> clock)
    : config_(config), dir_(std::move(dir)), classes_(std::move(classes)), clock_(std::move(clock)) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) spdlog::warn("clips: cannot create {}: {}", dir_.string(), ec.message());
  // Temporary files start with '.' (write_atomic_with): an interrupted write left them.
  for (const auto& e : std::filesystem::directory_iterator(dir_, ec))
    if (e.path().filename().string().rfind('.', 0) == 0) std::filesystem::remove(e.path(), ec);
}

ClipRecorder::~ClipRecorder() { stop(); }

void ClipRecorder::start() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (thread_.joinable() || stop_) return;
  thread_ = std::thread([this] { loop(); });
}

void ClipRecorder::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stop_) return;
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ClipRecorder::offer(const std::string& camera, double time, const cv::Mat& frame, std::vector<cv::Rect2f> hidden,
                         std::vector<TrackedFace> shown, double margin, FacePrivacy privacy, bool still) {
  if (frame.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stop_) return;
    Ring& ring = rings_[camera];
    if (time + 1e-3 < ring.next_time) return;
    // Frames a little early still count (processing times jitter), so that fps_limit = fps
    // keeps every frame.
    const double step = 1.0 / config_.fps;
    ring.next_time = std::max(ring.next_time + step, time + 0.8 * step);
    ring.forgotten = false;
    if (offers_.size() >= kMaxOffers) {
      ++dropped_;
      return;
    }
    offers_.push_back({camera, time, frame, std::move(hidden), std::move(shown), margin, privacy, still});
  }
  wake_.notify_one();
}

bool ClipRecorder::request(const std::string& camera, double time, const std::string& file) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stop_ || !thread_.joinable()) return false;
    requests_.push_back({camera, file, time});
  }
  wake_.notify_one();
  return true;
}

bool ClipRecorder::pending(const std::string& file) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return writing_.count(file) ||
         std::any_of(requests_.begin(), requests_.end(), [&](const Request& r) { return r.file == file; });
}

void ClipRecorder::forget(const std::string& camera) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = rings_.find(camera);
    if (it == rings_.end()) return;
    it->second.forgotten = true;
  }
  wake_.notify_one();
}

void ClipRecorder::take(Offer& o) {
  const Stopwatch clock;
  std::shared_ptr<const std::vector<uchar>> jpeg;
  if (o.still) {
    std::lock_guard<std::mutex> lock(mutex_);
    const Ring& ring = rings_[o.camera];
    if (!ring.shots.empty()) jpeg = ring.shots.back().jpeg;
  }
  if (!jpeg) {
    // Scaled first (less to blur and encode); the boxes scale with it.
    const cv::Size size = clip_size(o.frame.size(), config_.width);
    cv::Mat small;
    cv::resize(o.frame, small, size, 0, 0, cv::INTER_AREA);
    const float sx = static_cast<float>(size.width) / o.frame.cols, sy = static_cast<float>(size.height) / o.frame.rows;
    const auto scale = [&](cv::Rect2f& b) { b = cv::Rect2f(b.x * sx, b.y * sy, b.width * sx, b.height * sy); };
    for (auto& b : o.hidden) scale(b);
    for (auto& f : o.shown) scale(f.box);
    hide_faces(small, o.hidden, o.margin, o.privacy);
    draw_faces(small, o.shown, classes_);
    jpeg = std::make_shared<const std::vector<uchar>>(encode_jpeg(small, kJpegQuality));
  }
  o.frame.release();  // the camera's frame goes back before the lock
  ++kept_;
  frame_us_ += static_cast<int64_t>(clock.ms() * 1000);
  std::lock_guard<std::mutex> lock(mutex_);
  rings_[o.camera].shots.push_back({o.time, std::move(jpeg)});
}

// A camera's frames are kept for `before_s` (and as long as a clip asked for needs them).
void ClipRecorder::prune_locked(double now) {
  for (auto it = rings_.begin(); it != rings_.end();) {
    double keep_from = now - config_.before_s - 1;
    for (const auto& r : requests_)
      if (r.camera == it->first) keep_from = std::min(keep_from, r.time - config_.before_s - 1);
    auto& shots = it->second.shots;
    while (!shots.empty() && shots.front().time < keep_from) shots.pop_front();
    const bool wanted = std::any_of(requests_.begin(), requests_.end(), [&](const Request& r) { return r.camera == it->first; });
    it = it->second.forgotten && !wanted ? rings_.erase(it) : std::next(it);
  }
}

void ClipRecorder::write_due(double now, bool all) {
  std::vector<std::pair<Request, std::vector<Shot>>> due;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = requests_.begin(); it != requests_.end();) {
      const auto ring = rings_.find(it->camera);
      const bool gone = ring == rings_.end() || ring->second.forgotten;
      if (!all && !gone && now < it->time + config_.after_s + 0.5) {
        ++it;
        continue;
      }
      std::vector<Shot> shots;
      if (ring != rings_.end())
        for (const auto& s : ring->second.shots)
          if (s.time >= it->time - config_.before_s - 1e-3 && s.time <= it->time + config_.after_s + 1e-3)
            shots.push_back(s);
      writing_.insert(it->file);
      due.emplace_back(std::move(*it), std::move(shots));
      it = requests_.erase(it);
    }
    prune_locked(now);
  }
  for (const auto& [r, shots] : due) {
    // pending() stays true until the file is there (writing_).
    const bool ok = write(r, shots);
    ++(ok ? written_ : failed_);
    std::lock_guard<std::mutex> lock(mutex_);
    writing_.erase(r.file);
  }
}

bool ClipRecorder::write(const Request& r, const std::vector<Shot>& shots) {
  if (shots.empty()) {
    spdlog::warn("clip {}: camera {} had no frames around the event", r.file, r.camera);
    return false;
  }
  const Stopwatch clock;
  // Real time at a constant rate: each output frame shows the newest picture at its time,
  // so a gap (a camera slower than `fps`) lasts as long as it did.
  const double t0 = shots.front().time, t1 = shots.back().time;
  const int frames = std::max(1, static_cast<int>(std::floor((t1 - t0) * config_.fps + 1e-6)) + 1);
  cv::Size size;
  try {
    write_atomic_with(dir_ / r.file, [&](const std::filesystem::path& tmp) {
      VideoWriter out;
      size_t at = 0;
      const std::vector<uchar>* decoded_from = nullptr;
      cv::Mat picture;
      for (int k = 0; k < frames; ++k) {
        const double t = t0 + k / config_.fps;
        while (at + 1 < shots.size() && shots[at + 1].time <= t + 1e-3) ++at;
        if (shots[at].jpeg.get() != decoded_from) {
          std::string why;
          cv::Mat next = decode_jpeg(shots[at].jpeg->data(), shots[at].jpeg->size(), &why);
          if (next.empty()) throw Error("frame: " + why);
          decoded_from = shots[at].jpeg.get();
          if (!out.is_open()) {
            size = next.size();
            VideoWriterOptions o;
            o.for_browsers = true;
            o.threads = 1;  // beside the inference workers: one core at most
            if (!out.open(tmp, config_.fps, size, o)) throw Error(out.error());
          }
          if (next.size() != size) cv::resize(next, next, size, 0, 0, cv::INTER_AREA);  // the camera changed size
          picture = next;
        }
        if (!out.write(picture)) throw Error(out.error());
      }
      if (!out.close()) throw Error(out.error());
      return true;
    });
  } catch (const std::exception& e) {
    spdlog::warn("clip {}: {}", r.file, e.what());
    return false;
  }
  clip_us_ += static_cast<int64_t>(clock.ms() * 1000);
  spdlog::info("clip {}: {} frames ({:.1f} s, {}x{}) written in {:.0f} ms", r.file, frames, frames / config_.fps,
               size.width, size.height, clock.ms());
  return true;
}

void ClipRecorder::loop() {
  for (;;) {
    Offer o;
    bool stopping = false;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait_for(lock, std::chrono::milliseconds(200), [&] { return stop_ || !offers_.empty(); });
      stopping = stop_;
      if (!offers_.empty()) {
        o = std::move(offers_.front());
        offers_.pop_front();
      }
    }
    if (!o.frame.empty()) {
      try {
        take(o);
      } catch (const std::exception& e) {
        spdlog::warn("clips: camera {}: {}", o.camera, e.what());
      }
    }
    bool more = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      more = !offers_.empty();
    }
    if (stopping && !more) {
      write_due(clock_(), true);
      return;
    }
    if (!more) write_due(clock_(), false);
  }
}

}  // namespace maskwatch
