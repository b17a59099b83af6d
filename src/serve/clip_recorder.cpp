#include "serve/clip_recorder.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <opencv2/imgproc.hpp>

#include "media/image_codec.h"
#include "media/video_writer.h"
#include "util/error.h"
#include "util/files.h"
#include "util/stopwatch.h"
#include "vision/overlay.h"

namespace maskwatch {

namespace {
constexpr size_t kMaxOffers = 8;  // frames handed over and not yet kept; more are dropped
constexpr int kJpegQuality = 75;

// Even sizes (H.264 4:2:0), at most `width` wide.
cv::Size clip_size(cv::Size in, int width) {
  const double s = in.width > width ? static_cast<double>(width) / in.width : 1.0;
  const auto even = [](double v) { return std::max(2, static_cast<int>(std::lround(v / 2)) * 2); };
  return {even(in.width * s), even(in.height * s)};
}

double steady_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

std::string ClipRecorder::file_name(double time, const std::string& camera, const std::string& what) {
  return fmt::format("{:.0f}-{}-{}.mp4", time * 1000, camera, what);
}

double ClipRecorder::time_of(const std::string& file) { return std::strtod(file.c_str(), nullptr) / 1000; }

ClipRecorder::ClipRecorder(const ClipConfig& config, std::filesystem::path dir, std::vector<std::string> classes,
                           std::function<void(const std::string&)> on_lost, std::function<double()> clock)
    : config_(config),
      dir_(std::move(dir)),
      classes_(std::move(classes)),
      on_lost_(std::move(on_lost)),
      clock_(std::move(clock)) {
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
  if (started_ || stop_) return;
  started_ = true;
  intake_ = std::thread([this] { intake_loop(); });
  writer_ = std::thread([this] { writer_loop(); });
}

void ClipRecorder::stop(double budget_s) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stop_) return;
    stop_ = true;
    write_deadline_ = steady_s() + budget_s;
  }
  intake_wake_.notify_all();
  if (intake_.joinable()) intake_.join();  // its last act: every request becomes a job
  if (writer_.joinable()) writer_.join();
  // Not started: what was asked for is lost.
  std::vector<std::string> left;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& r : requests_) left.push_back(r.file);
    for (const auto& j : jobs_) left.push_back(j.request.file);
    requests_.clear();
    jobs_.clear();
  }
  for (const auto& f : left) lost(f);
}

void ClipRecorder::lost(const std::string& file) {
  ++failed_;
  if (!on_lost_) return;
  try {
    on_lost_(file);
  } catch (const std::exception& e) {
    spdlog::warn("clip {}: {}", file, e.what());
  }
}

void ClipRecorder::offer(const std::string& camera, double time, const cv::Mat& frame,
                         const std::vector<cv::Rect2f>& hidden, const std::vector<TrackedFace>& shown, double margin,
                         FacePrivacy privacy, bool still) {
  if (frame.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stop_ || !started_) return;
    Ring& ring = rings_[camera];
    const double step = 1.0 / config_.fps;
    // A clock set back (NTP) would stop the intake until it caught up: start the grid again.
    if (ring.next_time - time > 2 * step + 1) ring.next_time = 0;
    // On a grid of `step`, a quarter step early still counts (frames of a 15 fps source
    // limited to 10 come 67 and 133 ms apart); after a gap the grid starts again.
    if (ring.next_time > 0 && time + 0.25 * step < ring.next_time) return;
    ring.next_time = ring.next_time > 0 ? ring.next_time + step : time + step;
    if (ring.next_time < time) ring.next_time = time + step;
    if (offers_.size() >= kMaxOffers) {
      ++dropped_;
      return;
    }
    // The boxes and faces are copied only for a frame that is taken.
    offers_.push_back({camera, generations_[camera], time, frame, hidden, shown, margin, privacy, still});
    ++offered_;
  }
  intake_wake_.notify_one();
}

bool ClipRecorder::request(const std::string& camera, double time, const std::string& file) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stop_ || !started_) return false;
    const auto same = [&](const Request& r) { return r.file == file; };
    if (std::any_of(requests_.begin(), requests_.end(), same)) return true;  // two rules, one moment: one clip
    if (requests_.size() + jobs_.size() >= kMaxClips) {
      spdlog::warn("clip {}: {} clips are waiting already; none for this event", file, kMaxClips);
      return false;
    }
    requests_.push_back({camera, file, time});
  }
  intake_wake_.notify_one();
  return true;
}

bool ClipRecorder::pending(const std::string& file) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return writing_.count(file) ||
         std::any_of(requests_.begin(), requests_.end(), [&](const Request& r) { return r.file == file; }) ||
         std::any_of(jobs_.begin(), jobs_.end(), [&](const Job& j) { return j.request.file == file; });
}

void ClipRecorder::forget(const std::string& camera) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++generations_[camera];  // offers still queued are from the camera that goes: dropped
    const auto ring = rings_.find(camera);
    for (auto it = requests_.begin(); it != requests_.end();) {
      if (it->camera != camera) {
        ++it;
        continue;
      }
      jobs_.push_back(job_locked(std::move(*it), ring == rings_.end() ? nullptr : &ring->second));
      it = requests_.erase(it);
    }
    if (ring != rings_.end()) rings_.erase(ring);
  }
  writer_wake_.notify_one();
}

void ClipRecorder::take(Offer& o) {
  const Stopwatch clock;
  std::shared_ptr<const std::vector<uchar>> jpeg;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (o.generation != generations_[o.camera]) return;  // its camera was forgotten since
    if (o.still) {
      const auto ring = rings_.find(o.camera);
      if (ring != rings_.end() && !ring->second.shots.empty()) jpeg = ring->second.shots.back().jpeg;
    }
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
  frame_us_ += static_cast<int64_t>(clock.ms() * 1000);
  std::lock_guard<std::mutex> lock(mutex_);
  // Forgotten while it was encoded: dropped, not kept for the successor.
  if (o.generation != generations_[o.camera]) return;
  rings_[o.camera].shots.push_back({o.time, std::move(jpeg)});
  ++kept_;  // counted once in the ring, where a clip can take it
}

// The frames of the clip's window; when there are none in it (a window shorter than a frame
// interval), the one nearest the clip's time within a second.
ClipRecorder::Job ClipRecorder::job_locked(Request r, const Ring* ring) const {
  Job job;
  if (ring) {
    const Shot* nearest = nullptr;
    for (const auto& s : ring->shots) {
      if (s.time >= r.time - config_.before_s - 1e-3 && s.time <= r.time + config_.after_s + 1e-3)
        job.shots.push_back(s);
      if (!nearest || std::abs(s.time - r.time) < std::abs(nearest->time - r.time)) nearest = &s;
    }
    if (job.shots.empty() && nearest && std::abs(nearest->time - r.time) <= 1) job.shots.push_back(*nearest);
  }
  job.request = std::move(r);
  return job;
}

void ClipRecorder::schedule_due_locked(double now, bool all) {
  bool any = false;
  for (auto it = requests_.begin(); it != requests_.end();) {
    const auto ring = rings_.find(it->camera);
    // Due once its `after` has passed (and half a second for the frames on their way); a
    // camera that never gave a frame has nothing to wait for.
    if (!all && ring != rings_.end() && now < it->time + config_.after_s + 0.5) {
      ++it;
      continue;
    }
    jobs_.push_back(job_locked(std::move(*it), ring == rings_.end() ? nullptr : &ring->second));
    it = requests_.erase(it);
    any = true;
  }
  if (any) writer_wake_.notify_one();
}

// A camera's frames are kept for `before_s` (and as long as a clip asked for needs them).
void ClipRecorder::prune_locked(double now) {
  for (auto& [camera, ring] : rings_) {
    double keep_from = now - config_.before_s - 1;
    for (const auto& r : requests_)
      if (r.camera == camera) keep_from = std::min(keep_from, r.time - config_.before_s - 1);
    while (!ring.shots.empty() && ring.shots.front().time < keep_from) ring.shots.pop_front();
  }
}

void ClipRecorder::intake_loop() {
  for (;;) {
    Offer o;
    bool stopping = false;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      intake_wake_.wait_for(lock, std::chrono::milliseconds(200), [&] { return stop_ || !offers_.empty(); });
      stopping = stop_;
      if (!offers_.empty() && !stopping) {
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
      ++handled_;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    const double now = clock_();
    schedule_due_locked(now, stopping);
    prune_locked(now);
    if (stopping) {
      handled_ += static_cast<int64_t>(offers_.size());  // dropped: none is waiting any more
      offers_.clear();
      intake_done_ = true;
      writer_wake_.notify_all();
      return;
    }
  }
}

void ClipRecorder::writer_loop() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      writer_wake_.wait(lock, [&] { return !jobs_.empty() || intake_done_; });
      if (jobs_.empty()) return;  // the intake has ended: nothing more will come
      if (write_deadline_ > 0 && steady_s() > write_deadline_) return;  // stop() loses the rest
      job = std::move(jobs_.front());
      jobs_.pop_front();
      writing_.insert(job.request.file);
    }
    const bool ok = write(job);
    if (ok) ++written_;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      writing_.erase(job.request.file);
    }
    if (!ok) lost(job.request.file);
  }
}

bool ClipRecorder::write(const Job& job) {
  const Request& r = job.request;
  const auto& shots = job.shots;
  if (shots.empty()) {
    spdlog::warn("clip {}: camera {} had no frames around the event", r.file, r.camera);
    return false;
  }
  const Stopwatch clock;
  // Real time at a constant rate: each output frame shows the newest picture up to half a
  // frame after its time (frames that came unevenly, 67 and 133 ms apart, each get a slot),
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
        while (at + 1 < shots.size() && shots[at + 1].time <= t + 0.5 / config_.fps + 1e-6) ++at;
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

}  // namespace maskwatch
