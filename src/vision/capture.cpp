#include "media/image_io.h"
#include "vision/capture.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <opencv2/core.hpp>
#include <thread>

#include "util/error.h"
#include "util/log_text.h"
#include "util/rate_meter.h"

namespace maskwatch {

using Clock = Capture::Clock;

const char* status_name(CameraStatus s) {
  switch (s) {
    case CameraStatus::Starting: return "starting";
    case CameraStatus::Online: return "online";
    case CameraStatus::Offline: return "offline";
    case CameraStatus::Disabled: return "disabled";
  }
  return "unknown";
}

namespace {

constexpr double kFirstBackoffS = 0.5;
constexpr double kStallLogSeconds = 2.0;  // a live source quiet this long (connection open): logged as a stall

// A FIFO that nobody writes to blocks open(2) for ever: FFmpeg's file protocol opens it
// blocking and no interrupt callback reaches a blocked system call. Opening the FIFO for
// writing (non-blocking) completes such a reader's open, and closing it at once gives the
// reader end-of-file, so the source fails to open and the capture thread sees the stop.
// Without a reader the open fails with ENXIO, harmlessly.
void wake_fifo_reader(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd >= 0) ::close(fd);
}

}  // namespace

struct Capture::State {
  std::string spec;
  CaptureOptions opts;
  std::string log_name;  // opts.name, or the source
  bool fifo = false;  // the source is a FIFO now (checked again before each open; capture thread only)
  Clock::time_point started = Clock::now();
  std::unique_ptr<FrameSource> reader;  // the capture thread's (or start()'s, before the thread)

  mutable std::mutex mutex;
  std::condition_variable cv;  // a frame, the end, or the stop
  std::mutex callback_mutex;   // held while a callback runs; the destructor takes it to stop them
  bool stop = false, finished = false, has_new = false, stall_logged = false;
  SourceFrame latest;
  Clock::time_point last_frame = started;
  int64_t captured = 0, dropped = 0;
  CameraStatus status = CameraStatus::Starting;
  std::string detail, failure, description;
  double fps = 0;
  RateMeter arrivals{std::chrono::seconds(5)};  // since the status last changed

  bool stopping() {
    std::lock_guard<std::mutex> lock(mutex);
    return stop;
  }
  // Sleeps up to `s` seconds, waking early when asked to stop. False when stopping.
  bool pause(double s) {
    std::unique_lock<std::mutex> lock(mutex);
    cv.wait_for(lock, std::chrono::duration<double>(std::max(0.0, s)), [&] { return stop; });
    return !stop;
  }
  template <class F>
  void callback(F&& f) {
    std::lock_guard<std::mutex> lock(callback_mutex);
    if (!stopping()) f();
  }
  void set_status(CameraStatus s, const std::string& why) {
    const std::string d = redact_url(why);  // stored in history and served by the API
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (s == status) return;
      status = s;
      detail = d;
      arrivals.reset();  // a new run of frames: no rate from the last one
    }
    if (opts.on_status) callback([&] { opts.on_status(s, d); });
  }
  void note_waiting(const std::string& why) {  // the status stays; its detail and one log line say why
    {
      std::lock_guard<std::mutex> lock(mutex);
      detail = redact_url(why);
    }
    spdlog::info("{}: {}", log_name, why);
  }
  void end(const std::string& why_lost) {  // the source is done for good
    std::lock_guard<std::mutex> lock(mutex);
    if (!why_lost.empty() && failure.empty()) failure = why_lost;
    finished = true;
    cv.notify_all();
  }
  void deliver(SourceFrame& f, int64_t index) {
    if (opts.mirror) cv::flip(f.image, f.image, 1);
    const auto now = Clock::now();
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (has_new) ++dropped;  // the consumer did not take the previous one: keep only the newest
      f.index = index;
      f.time_s = std::chrono::duration<double>(now - started).count();
      f.captured = now;
      latest = std::move(f);
      has_new = true;
      stall_logged = false;
      last_frame = now;
      ++captured;
      arrivals.tick(now);
      cv.notify_all();
    }
    if (opts.on_frame) callback(opts.on_frame);
  }
  // A live source quiet for a while with its connection open: say so once (the read is still
  // waiting for its time-out).
  void note_stall_locked(Clock::time_point now) {
    const double quiet = std::chrono::duration<double>(now - last_frame).count();
    if (quiet > kStallLogSeconds && !stall_logged && captured > 0 && status == CameraStatus::Online) {
      stall_logged = true;
      spdlog::warn("{}: stalled, no frame for {:.0f} s", log_name, quiet);
    }
  }
  bool take_locked(SourceFrame& out) {
    if (!has_new) return false;
    out = std::move(latest);
    latest = SourceFrame{};
    has_new = false;
    return true;
  }

  bool open() {
    fifo = is_fifo_path(spec);  // a FIFO made after the start is one from then on
    if (fifo) note_waiting("waiting for a writer on the FIFO (open blocks until one opens it for writing)");
    std::unique_ptr<FrameSource> r = open_reader(spec, opts.source);  // throws with the reason
    std::lock_guard<std::mutex> lock(mutex);
    description = r->description();
    fps = r->fps();
    reader = std::move(r);
    return true;
  }

  // A live source that gave no frame for reconnect_for_s is lost for good: true after ending.
  bool gave_up() {
    const double give_up = opts.source.reconnect_for_s;
    const double since_frame = std::chrono::duration<double>(Clock::now() - last_frame).count();
    if (!(give_up > 0 && since_frame >= give_up)) return false;
    const std::string why =
        fmt::format("{}: lost, no frame for {:.0f} s (--reconnect-for {:g})", spec, since_frame, give_up);
    spdlog::error("{}", why);
    set_status(CameraStatus::Offline, why);
    end(why);
    return true;
  }

  void run();
};

void Capture::State::run() {
  double backoff_s = kFirstBackoffS;
  int64_t index = 0;
  bool reopening = false;  // a live source was lost and is being opened again
  while (!stopping()) {
    if (!reader) {
      if (reopening && gave_up()) return;
      try {
        open();
      } catch (const std::exception& e) {
        if (stopping()) break;  // the open was interrupted on purpose
        if (fifo && !opts.reopen_fifo) return end(spec + ": " + e.what());
        set_status(CameraStatus::Offline, e.what());
        spdlog::warn("{}: {}; retrying in {:.1f} s", log_name, e.what(), backoff_s);
        reopening = true;
        if (!pause(backoff_s)) break;
        backoff_s = std::min(backoff_s * 2, opts.backoff_max_s);
        continue;
      }
    }
    FrameSource& src = *reader;
    const bool live = src.live();
    const double period = opts.pace && !live && src.fps() > 0 ? 1.0 / src.fps() : 0;
    auto next_due = Clock::now();
    bool got_any = false;
    SourceFrame f;
    while (!stopping() && src.read(f)) {
      if (!got_any) {
        got_any = true;
        backoff_s = kFirstBackoffS;
        if (reopening) spdlog::info("{}: reopened", log_name);
        reopening = false;
        set_status(CameraStatus::Online, src.description());
      }
      if (period > 0) {
        next_due += std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(period));
        const double wait = std::chrono::duration<double>(next_due - Clock::now()).count();
        if (wait > 0 && !pause(wait)) break;
        if (wait < -1) next_due = Clock::now();  // fell far behind: do not rush to catch up
      }
      deliver(f, index++);
    }
    if (stopping()) break;
    if (!live) {
      reader.reset();
      if (got_any && opts.loop) continue;  // the demo clip again, at once
      const std::string what = std::filesystem::is_directory(spec) ? "image folder"
                               : is_image_file(spec)                 ? "image"
                                                                     : "video file";
      const std::string why = got_any ? what + " ended; not read again (loop: false)" : what + " has no frame";
      set_status(CameraStatus::Offline, why);
      spdlog::info("{}: {}", log_name, why);
      return end("");
    }
    if (src.finished() && !fifo) {  // a recording behind a URL: its end, not a lost feed
      reader.reset();
      if (opts.loop) continue;
      const std::string why = "stream ended: it is a recording (the container gives its length), not read again";
      set_status(CameraStatus::Offline, why);
      spdlog::info("{}: {}", log_name, why);
      return end("");
    }
    const std::string why = fifo                        ? "the FIFO's writer closed it"
                            : src.failure().empty()     ? "stream ended, dropped or timed out"
                                                        : src.failure();
    reader.reset();
    if (fifo && !opts.reopen_fifo) return end(spec + ": " + why);
    if (gave_up()) return;
    set_status(CameraStatus::Offline, why);
    reopening = true;
    if (fifo) continue;  // its next writer brings new frames: wait for one at once
    spdlog::warn("{}: {}; reconnecting in {:.1f} s", log_name, why, backoff_s);
    if (!pause(backoff_s)) break;
    backoff_s = std::min(backoff_s * 2, opts.backoff_max_s);
  }
  end("");
}

Capture::Capture(std::string spec, CaptureOptions options) : s_(std::make_shared<State>()) {
  s_->spec = std::move(spec);
  s_->opts = std::move(options);
  s_->log_name = s_->opts.name.empty() ? s_->spec : s_->opts.name;
}

void Capture::start(bool open_here) {
  if (open_here && !is_fifo_path(s_->spec)) s_->open();  // throws with the reason
  thread_ = std::thread([s = s_] { s->run(); });
}

void Capture::disable(const std::string& why) {
  s_->set_status(CameraStatus::Disabled, why);
  s_->end("");
}

Capture::~Capture() {
  {
    std::lock_guard<std::mutex> callbacks(s_->callback_mutex);  // waits for a callback under way
    std::lock_guard<std::mutex> lock(s_->mutex);
    s_->stop = true;
    s_->cv.notify_all();
  }
  // A thread in a blocking FIFO open is woken by a writer that comes and goes; one inside a
  // read waits for its time-out. Wait up to half a second, then leave it: it owns a share of
  // the state and ends on its own.
  if (!thread_.joinable()) return;
  const auto deadline = Clock::now() + std::chrono::milliseconds(500);
  std::unique_lock<std::mutex> lock(s_->mutex);
  while (!s_->finished && Clock::now() < deadline) {
    if (is_fifo_path(s_->spec)) {
      lock.unlock();
      wake_fifo_reader(s_->spec);
      lock.lock();
    }
    s_->cv.wait_for(lock, std::chrono::milliseconds(50), [&] { return s_->finished; });
  }
  const bool done = s_->finished;
  lock.unlock();
  if (done)
    thread_.join();
  else
    thread_.detach();
}

bool Capture::take(SourceFrame& out) {
  std::lock_guard<std::mutex> lock(s_->mutex);
  s_->note_stall_locked(Clock::now());
  return s_->take_locked(out);
}

bool Capture::wait(SourceFrame& out) {
  std::unique_lock<std::mutex> lock(s_->mutex);
  const auto* cancel = s_->opts.source.cancel;
  while (!s_->has_new && !s_->finished && !(cancel && cancel->load())) {
    s_->cv.wait_for(lock, std::chrono::milliseconds(100));
    s_->note_stall_locked(Clock::now());
  }
  return s_->take_locked(out);
}

CameraStatus Capture::status() const {
  std::lock_guard<std::mutex> lock(s_->mutex);
  return s_->status;
}
std::string Capture::status_detail() const {
  std::lock_guard<std::mutex> lock(s_->mutex);
  return s_->detail;
}
std::string Capture::failure() const {
  std::lock_guard<std::mutex> lock(s_->mutex);
  return s_->failure;
}
std::string Capture::description() const {
  std::lock_guard<std::mutex> lock(s_->mutex);
  return s_->description;
}
double Capture::fps() const {
  std::lock_guard<std::mutex> lock(s_->mutex);
  return s_->fps;
}
int64_t Capture::frames_captured() const {
  std::lock_guard<std::mutex> lock(s_->mutex);
  return s_->captured;
}
int64_t Capture::frames_dropped() const {
  std::lock_guard<std::mutex> lock(s_->mutex);
  return s_->dropped;
}
double Capture::camera_fps() const {
  std::lock_guard<std::mutex> lock(s_->mutex);
  return s_->status == CameraStatus::Online ? s_->arrivals.rate(Clock::now()) : 0.0;
}

namespace {

// `run`'s live sources: read() waits on the capture thread's newest frame.
class LiveSource : public FrameSource {
 public:
  LiveSource(const std::string& spec, const SourceOptions& o) : capture_(spec, [&] {
    CaptureOptions c;
    c.source = o;
    c.reopen_fifo = false;  // `run` ends when its FIFO's writer leaves
    return c;
  }()) {
    capture_.start(/*open_here=*/true);
  }
  bool read(SourceFrame& out) override { return capture_.wait(out); }
  bool live() const override { return true; }
  double fps() const override { return capture_.fps(); }
  std::string description() const override {
    const std::string d = capture_.description();
    return d.empty() ? "FIFO (waiting for its writer)" : d;
  }
  int64_t dropped() const override { return capture_.frames_dropped(); }
  std::string failure() const override { return capture_.failure(); }

 private:
  Capture capture_;
};

}  // namespace

std::unique_ptr<FrameSource> open_live_source(const std::string& spec, const SourceOptions& options) {
  return std::make_unique<LiveSource>(spec, options);
}

}  // namespace maskwatch
