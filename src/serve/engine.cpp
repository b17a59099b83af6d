#include "serve/engine.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <map>
#include <opencv2/imgproc.hpp>

#include "media/image_codec.h"
#include "serve/engine_camera.h"
#include "serve/track_archive.h"
#include "util/files.h"
#include "util/stopwatch.h"
#include "vision/events.h"
#include "vision/overlay.h"

namespace maskwatch {

namespace {
// Workers: as asked, else one per core but no more than there are cameras (a camera is
// processed by one worker at a time, so more would idle).
int worker_count(const ServeConfig& c) {
  if (c.detector.workers > 0) return c.detector.workers;
  return std::max(1, std::min(cv::getNumThreads(), static_cast<int>(c.cameras.size())));
}
}  // namespace

struct Engine::Worker {
  std::unique_ptr<MaskClassifier> own_classifier;  // workers after the first
  std::unique_ptr<FaceDetector> own_detector;
  MaskClassifier* classifier = nullptr;
  FaceDetector* detector = nullptr;
  size_t next = 0;  // the camera it looks at first
  std::thread thread;
};

Engine::Engine(const ServeConfig& config, Storage& storage)
    : config_(config),
      storage_(storage),
      workers_wanted_(worker_count(config)),
      // Each worker's XNNPACK pools get an equal share of the cores.
      engine_threads_(std::max(1, cv::getNumThreads() / workers_wanted_)),  // `serve --threads`, else the cores
      classifier_(config.model_path(), {}, InferenceEngine::Xnnpack,
                  engine_threads_),
      detector_([&] {
        // One detector serves every camera; each camera's pipeline asks it for the faces
        // down to its own thresholds (Pipeline::process), so its own threshold here is only
        // the default.
        FaceDetectorOptions o;
        o.model = config.detector.face_model;
        o.score_threshold = config.detector.score_threshold;
        for (const auto& c : config.cameras)
          o.score_threshold = std::min(o.score_threshold, c.detector.score_threshold);
        o.detect_width = config.detector.detect_width;
        o.threads = engine_threads_;
        return o;
      }()) {
  // A run before us that was killed left its cameras online in history: close that first.
  if (const auto marked = storage_.close_unclean_stop(kUncleanStop); !marked.empty())
    spdlog::warn("the last run did not stop cleanly (killed or crashed): {} marked offline in history from its last "
                 "event on",
                 fmt::join(marked, ", "));
  classifier_.warn_if_crops_differ(true, config_.model_path());
  mask_class_ = mask_class_index(classifier_.classes());
  history_ = std::make_unique<HistoryWriter>(storage_, classifier_.classes()[static_cast<size_t>(mask_class_)]);
  // Only where a clip can be asked for (alert rules and clips.unmasked_tracks need a restart
  // to change, cameras do not).
  const bool any_clips =
      config_.clips.enabled && (config_.clips.unmasked_tracks ||
                                std::any_of(config_.alerts.begin(), config_.alerts.end(), alert_has_picture));
  if (any_clips)
    clips_ = std::make_unique<ClipRecorder>(config_.clips, storage_.clip_dir(), classifier_.classes(),
                                            // A clip that will not be there: its event stops naming it.
                                            [this](const std::string& file) { storage_.forget_clip(file); });
  auto list = std::make_shared<CameraList>();
  for (const auto& cc : config_.cameras) list->push_back(make_camera(cc));
  cameras_ = std::move(list);
  const std::filesystem::path model = config.model_path();
  for (int w = 0; w < workers_wanted_; ++w) {
    auto worker = std::make_unique<Worker>();
    if (w == 0) {
      worker->classifier = &classifier_;
      worker->detector = &detector_;
    } else {
      worker->own_classifier = std::make_unique<MaskClassifier>(model, std::filesystem::path{},
                                                                classifier_.engine(), engine_threads_);
      worker->own_detector = std::make_unique<FaceDetector>(detector_.options());
      worker->classifier = worker->own_classifier.get();
      worker->detector = worker->own_detector.get();
    }
    worker->next = cameras_->empty() ? 0 : static_cast<size_t>(w) % cameras_->size();
    workers_.push_back(std::move(worker));
  }
  if (workers_.size() > 1)
    spdlog::info("{} inference workers, {} thread(s) each for detection and classification", workers_.size(),
                 engine_threads_);
}

Engine::~Engine() { stop(); }

bool keeps_clips(const ServeConfig& config, const CameraConfig& camera) {
  if (!config.clips.enabled || camera.privacy == FacePrivacy::None) return false;
  return config.clips.unmasked_tracks || std::any_of(config.alerts.begin(), config.alerts.end(), [&](const AlertRule& r) {
    return alert_has_picture(r) &&
           (r.cameras.empty() || std::find(r.cameras.begin(), r.cameras.end(), camera.name) != r.cameras.end());
  });
}

std::string Engine::request_clip(const std::string& camera, double time, const std::string& what) {
  const auto cam = find(camera);
  if (!clips_ || !cam || !cam->keeps_clips) return "";
  std::string file = ClipRecorder::file_name(time, camera, what);
  return clips_->request(camera, time, file) ? file : "";
}

void Engine::start() {
  started_unix_ = unix_now();
  if (clips_) clips_->start();
  for (auto& c : *cameras()) start_camera(*c);
  for (size_t w = 0; w < workers_.size(); ++w)
    workers_[w]->thread = std::thread([this, w] { worker(*workers_[w]); });
  housekeeping_ = std::thread([this] { housekeeping(); });
}

void Engine::stop() {
  if (stop_.exchange(true)) return;
  { std::lock_guard<std::mutex> lock(wake_mutex_); }  // a waiter past its check of stop_ is waiting now
  wake_.notify_all();
  housekeeping_wake_.notify_all();
  std::lock_guard<std::mutex> one(reconfigure_mutex_);  // none under way, none after
  const auto cams = cameras();
  for (auto& c : *cams) c->frame_cv.notify_all();
  for (auto& w : workers_)
    if (w->thread.joinable()) w->thread.join();
  if (housekeeping_.joinable()) housekeeping_.join();  // a retention pass stops between two batches
  for (auto& c : *cams) {
    // stats() and prometheus_metrics() (HTTP, MQTT threads) read the feed under the camera's
    // mutex: take it out under that mutex, then join its capture thread outside it.
    std::unique_ptr<Capture> feed;
    {
      std::lock_guard<std::mutex> lock(c->mutex);
      feed = std::move(c->feed);
    }
    feed.reset();
  }
  // Tracks still open are history too: end them now. And the cameras go offline in history
  // too, or it would show them online across the time the service was down.
  for (auto& c : *cams) {
    finish_open_tracks(*c);
    const CameraStatus last = c->last_status;
    if (!c->retired && (last == CameraStatus::Online || last == CameraStatus::Starting))
      on_status(*c, CameraStatus::Offline, kServiceStopped);
  }
  if (clips_) clips_->stop();  // the clips asked for, with the frames there are
  if (const size_t lost = history_->retry())
    spdlog::error("storage: {} history row(s) could not be written before stopping: {}", lost, history_->last_error());
  bus_.close();
}

void Engine::on_status(Camera& cam, CameraStatus status, const std::string& detail) {
  const double now = unix_now();
  spdlog::info("camera {}: {} ({})", cam.config.name, status_name(status), detail);
  cam.last_status = status;
  history_->add_status(cam.config.name, now, status_name(status), detail);
  bus_.publish(StatusChanged{cam.config.name, status, detail, now});
}

void Engine::housekeeping() {
  using Clock = std::chrono::steady_clock;
  auto next_retention = Clock::now();
  while (!stop_) {
    history_->retry();
    if (Clock::now() >= next_retention) {
      try {
        const int removed =
            storage_.apply_retention(config_.storage.retention_days, config_.storage.snapshot_days,
                                     config_.storage.max_disk_mb, unix_now(), [this] { return !stop_; });
        if (removed) spdlog::info("retention: removed {} old picture(s) (snapshots, clips)", removed);
      } catch (const std::exception& e) {
        spdlog::error("retention: {}", e.what());
      }
      // Every 5 minutes: clips of a few MB each can pass max_disk_mb quickly.
      next_retention = Clock::now() + std::chrono::minutes(5);
    }
    std::unique_lock<std::mutex> lock(wake_mutex_);
    housekeeping_wake_.wait_for(lock, std::chrono::seconds(2), [this] { return stop_.load(); });
  }
}

void Engine::worker(Worker& me) {
  while (!stop_) {
    bool did = false;
    const auto cams = cameras();
    for (size_t k = 0; k < cams->size() && !did; ++k) {
      const size_t at = (me.next + k) % cams->size();
      Camera& cam = *(*cams)[at];
      // One worker per camera at a time: its frames are processed in order, by one tracker.
      if (cam.busy.exchange(true, std::memory_order_acquire)) continue;
      struct Release {
        std::atomic<bool>& busy;
        std::condition_variable& wake;
        bool processed = false;
        ~Release() {
          busy.store(false, std::memory_order_release);
          // A frame that arrived meanwhile may have woken a worker that found this camera
          // busy and went back to sleep: wake one again now that the camera is free.
          if (processed) wake.notify_one();
        }
      } release{cam.busy, wake_};
      if (!cam.feed) continue;
      SourceFrame f;
      if (!cam.feed->take(f)) {
        // A camera gone offline (a video that ended, a stream that dropped) sends no frame that
        // could end its tracks: they end now, and "faces now" is 0, not its last face for ever.
        if (cam.last_status == CameraStatus::Offline) end_faces_in_view(cam);
        continue;
      }
      const auto now = std::chrono::steady_clock::now();
      if (!cam.pacer.admit(f.time_s)) {  // fps_limit, by capture time
        std::lock_guard<std::mutex> lock(cam.mutex);
        ++cam.skipped;
        continue;
      }
      cam.last_processed = now;
      me.next = (at + 1) % cams->size();  // fairness: the next camera goes first next time
      did = release.processed = true;
      if (!cam.detect) {
        show_undetected(cam, std::move(f.image));
        continue;
      }
      const int64_t index = f.index;
      try {
        cam.pipeline->bind(*me.classifier, *me.detector);
        process(cam, std::move(f));
      } catch (const std::exception& e) {
        spdlog::error("camera {}: frame {}: {}", cam.config.name, index, e.what());
      }
    }
    if (!did) {
      std::unique_lock<std::mutex> lock(wake_mutex_);
      wake_.wait_for(lock, std::chrono::milliseconds(20));
    }
  }
}

void Engine::process(Camera& cam, SourceFrame f) {
  const double now = unix_now();
  const cv::Mat& frame = f.image;
  const bool detect = cam.motion.needs_detection(frame, f.time_s);
  FrameResult r = detect ? cam.pipeline->process(frame, f.index, f.time_s)
                         : cam.pipeline->process_with_last_faces(frame, f.index, f.time_s);
  // Every face hides in what leaves the process: those found in this frame, shown (over the
  // camera's threshold) or not, and the last box of each track the detector missed in it.
  std::vector<cv::Rect2f> face_boxes = cam.pipeline->privacy_boxes();
  if (cam.keeps_clips)
    clips_->offer(cam.config.name, now, frame, face_boxes, r.faces, cam.config.detector.margin, cam.config.privacy,
                  !detect);
  LedgerUpdate news = cam.ledger.observe(r, frame, now);

  {
    std::lock_guard<std::mutex> lock(hist_mutex_);
    const double stage_s[3] = {r.times.detect_ms / 1000, r.times.classify_ms / 1000, r.times.track_ms / 1000};
    for (int i = detect ? 0 : 1; i < 3; ++i) stage_hist_[i].add(stage_s[i]);  // no detection: no detect time
  }
  {
    std::lock_guard<std::mutex> lock(cam.mutex);
    // FPS from the processing starts (completion times bunch up when one frame takes longer
    // than the next).
    cam.processing.tick(cam.last_processed);
    cam.process_fps = cam.processing.rate(cam.last_processed);
    // Capture to result: waiting for a worker, detection, classification, bookkeeping.
    cam.latencies_ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - f.captured).count());
    if (cam.latencies_ms.size() > kLatencyFrames) cam.latencies_ms.pop_front();
    ++cam.seq;
    cam.raw = frame;
    cam.face_boxes = std::move(face_boxes);
    cam.faces_known = true;
    cam.overlay.message.clear();
    cam.overlay.fps = cam.process_fps;
    ++cam.processed;
    if (!detect) ++cam.without_detection;
    cam.faces_now = static_cast<int>(r.faces.size());
    cam.now_by_label.clear();
    for (const auto& f : r.faces) ++cam.now_by_label[verdict_name(f.verdict, classes())];
    refresh_in_view(cam);
    cam.result = std::move(r);
  }
  cam.frame_cv.notify_all();
  // Events after the frame they come from is stored: an alert fired on one (a track older
  // than the rule's seconds by the time a slow first frame is done) takes its snapshot from
  // latest_jpeg, which has nothing before the first stored frame.
  for (auto& v : news.verdicts) {
    // clips.unmasked_tracks: the first time a track is judged without a mask.
    if (config_.clips.unmasked_tracks && cam.keeps_clips && v.to != kUncertain && v.to != mask_class_ &&
        !cam.track_clips.count(v.track_id)) {
      std::string file = request_clip(cam.config.name, now, fmt::format("track{}", v.track_id));
      if (!file.empty()) cam.track_clips[v.track_id] = std::move(file);
    }
    bus_.publish(FaceVerdict{cam.config.name, std::move(v)});
  }
  for (auto& t : news.ended) finish_track(cam, std::move(t));
}

void Engine::finish_open_tracks(Camera& cam) {
  for (auto& t : cam.ledger.end_all()) finish_track(cam, std::move(t));
}

std::map<std::string, int> Engine::by_label(const std::map<int, int>& by_verdict) const {
  std::map<std::string, int> out;
  for (const auto& [verdict, n] : by_verdict) out[verdict_name(verdict, classifier_.classes())] += n;
  return out;
}

void Engine::end_faces_in_view(Camera& cam) {
  finish_open_tracks(cam);  // the ledger is this worker's while it holds the camera
  std::lock_guard<std::mutex> lock(cam.mutex);
  if (cam.faces_now == 0 && cam.now_by_label.empty()) return;
  cam.faces_now = 0;
  cam.now_by_label.clear();
  cam.in_view_by_label.clear();
  cam.in_view_by_zone.clear();
}

void Engine::show_undetected(Camera& cam, cv::Mat frame) {
  end_faces_in_view(cam);
  std::lock_guard<std::mutex> lock(cam.mutex);
  // Nothing is processed: the rate is 0, and it starts afresh when detection is back (the
  // pause is no interval between processed frames).
  cam.process_fps = 0;
  cam.processing.reset();
  cam.overlay.fps = 0;
  ++cam.seq;
  cam.raw = std::move(frame);
  cam.face_boxes.clear();
  cam.faces_known = false;  // no detector ran: with privacy on, the whole picture is hidden
  cam.overlay.message = "detection off";
  cam.result = FrameResult{};
  ++cam.skipped;
  cam.frame_cv.notify_all();
}

void Engine::refresh_in_view(Camera& cam) const {
  cam.in_view_by_label = by_label(cam.ledger.in_view());
  for (const auto& z : cam.config.zones)
    if (z.include) cam.in_view_by_zone[z.name] = by_label(cam.ledger.in_view(&z.name));
}

void Engine::finish_track(Camera& cam, TrackEnded t) {
  {
    // Out of the faces in view (the ledger has let it go) before it is counted as finished:
    // no moment counts it twice.
    std::lock_guard<std::mutex> lock(cam.mutex);
    refresh_in_view(cam);
  }
  std::string clip;
  if (const auto it = cam.track_clips.find(t.track_id); it != cam.track_clips.end()) {
    // Named only if it is (or will be) there: a clip lost before the row exists cannot be
    // taken out of it.
    std::error_code ec;
    if (clips_->pending(it->second) || std::filesystem::exists(storage_.clip_dir() / it->second, ec))
      clip = std::move(it->second);
    cam.track_clips.erase(it);
  }
  FaceEnded ended = archive_track(cam.config.name, std::move(t), classifier_.classes(), cam.config.privacy,
                                  storage_.snapshot_dir(), *history_, clip);
  {
    std::lock_guard<std::mutex> lock(cam.mutex);
    ++cam.faces_total[verdict_name(ended.track.verdict, classifier_.classes())];
  }
  bus_.publish(std::move(ended));
}

}  // namespace maskwatch
