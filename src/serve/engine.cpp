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
#include "serve/frame_pacer.h"
#include "util/files.h"
#include "util/paths.h"
#include "util/stopwatch.h"
#include "util/threads.h"
#include "vision/crop.h"
#include "vision/events.h"
#include "vision/overlay.h"

namespace maskwatch {
namespace {

constexpr const char* kStageNames[5] = {"detect", "classify", "track", "draw", "encode"};
constexpr double kBuckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0};
constexpr size_t kBucketCount = sizeof kBuckets / sizeof kBuckets[0];

cv::Mat scaled_to_height(const cv::Mat& img, int h) {
  if (h <= 0 || h == img.rows) return img;
  cv::Mat out;
  const int w = std::max(1, static_cast<int>(std::lround(img.cols * static_cast<double>(h) / img.rows)));
  cv::resize(img, out, cv::Size(w, h), 0, 0, h < img.rows ? cv::INTER_AREA : cv::INTER_LINEAR);
  return out;
}

}  // namespace

struct Engine::Histogram {
  uint64_t counts[kBucketCount + 1] = {};
  double sum = 0;
  uint64_t n = 0;
  void add(double seconds) {
    size_t i = 0;
    while (i < kBucketCount && seconds > kBuckets[i]) ++i;
    ++counts[i];
    sum += seconds;
    ++n;
  }
};

// Everything about one camera. Feed and pipeline are touched by the worker only; the
// outputs (frames, JPEG, live counts) are guarded by `mutex` for the HTTP threads.
// process_fps counts the frames processed this long back.
constexpr auto kRateWindow = std::chrono::seconds(3);
constexpr size_t kLatencyFrames = 300;

static double percentile_of(std::deque<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

struct Engine::Camera {
  CameraConfig config;
  std::unique_ptr<CameraFeed> feed;
  std::unique_ptr<Pipeline> pipeline;
  std::chrono::steady_clock::time_point last_processed{};
  FramePacer pacer;                                                 // fps_limit (worker thread only)
  MotionGate motion;                                                // the detector only where something moved
  std::deque<std::chrono::steady_clock::time_point> recent_starts;  // processing starts, last kRateWindow
  TrackLedger ledger;  // its face tracks: starts, verdict changes, ends (worker thread only)

  mutable std::mutex mutex;
  mutable std::condition_variable frame_cv;
  // The newest processed frame and what was found in it. Its JPEGs are drawn and encoded
  // lazily, by the first HTTP thread that asks, once per frame and size: the worker never
  // pays for viewers, and with none watching nothing is encoded at all.
  cv::Mat raw;
  FrameResult result;
  OverlayStatus overlay;
  mutable std::map<std::tuple<bool, int, int>, std::shared_ptr<const Jpeg>> jpegs;  // of jpegs_seq only
  mutable int64_t jpegs_seq = 0;
  mutable double last_draw_ms = 0;  // the overlay shows the previous drawing's time, as `run` does
  mutable std::mutex encode_mutex;  // one encoder per camera: the others wait and share its JPEG
  int64_t seq = 0;
  int64_t processed = 0, skipped = 0;
  int64_t without_detection = 0;  // processed with the last faces: nothing moved
  double process_fps = 0;
  int faces_now = 0;
  std::map<std::string, int> now_by_label;
  std::map<std::string, int64_t> faces_total;  // finished tracks by final label
  std::atomic<int> stream_clients{0};
  std::atomic<bool> detect{true};
  std::atomic<bool> busy{false};  // claimed by a worker (Engine::worker)
  std::deque<double> latencies_ms;  // capture to result, the last kLatencyFrames processed frames
  std::map<std::string, int> in_view_by_label;  // open tracks by their verdict so far
};

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
      classifier_(config.model.empty() ? default_model_path().string() : config.model, {}, InferenceEngine::Xnnpack,
                  engine_threads_),
      detector_([&] {
        // One detector serves every camera, at the lowest face threshold any camera asks
        // for; each camera then drops the faces under its own (process()).
        FaceDetectorOptions o;
        o.model = config.detector.face_model;
        o.score_threshold = config.detector.score_threshold;
        for (const auto& c : config.cameras)
          o.score_threshold = std::min(o.score_threshold, c.detector.score_threshold);
        o.detect_width = config.detector.detect_width;
        o.threads = engine_threads_;
        return o;
      }()) {
  mask_class_ = mask_class_index(classifier_.classes());
  history_ = std::make_unique<HistoryWriter>(storage_, classifier_.classes()[static_cast<size_t>(mask_class_)]);
  for (auto& h : stage_hist_) h = std::make_unique<Histogram>();
  for (const auto& cc : config_.cameras) {
    auto cam = std::make_unique<Camera>();
    cam->config = cc;
    cam->pacer = FramePacer(cc.fps_limit);
    cam->motion = MotionGate(cc.motion);
    // The detector is shared at the lowest threshold of any camera: the ledger drops the
    // faces under this camera's own.
    cam->ledger = TrackLedger({cc.detector.score_threshold, config_.storage.snapshots, 0.5});
    PipelineOptions po;
    po.crop_margin = cc.detector.margin;
    po.schedule.refresh_s = cc.detector.reclassify_after_s;
    po.tracker = cc.tracker;
    cam->pipeline = std::make_unique<Pipeline>(classifier_, detector_, po);
    for (const auto& label : classifier_.classes()) cam->faces_total[label] = 0;
    cam->faces_total["uncertain"] = 0;
    Camera* raw = cam.get();
    cam->feed = std::make_unique<CameraFeed>(
        cc, &wake_, [this, raw](CameraStatus s, const std::string& d) { on_status(*raw, s, d); });
    cameras_.push_back(std::move(cam));
  }
  const std::filesystem::path model = config.model.empty() ? default_model_path() : std::filesystem::path(config.model);
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
    worker->next = cameras_.empty() ? 0 : static_cast<size_t>(w) % cameras_.size();
    workers_.push_back(std::move(worker));
  }
  if (workers_.size() > 1)
    spdlog::info("{} inference workers, {} thread(s) each for detection and classification", workers_.size(),
                 engine_threads_);
}

Engine::~Engine() { stop(); }

void Engine::start() {
  started_unix_ = unix_now();
  for (auto& c : cameras_) c->feed->start();
  for (size_t w = 0; w < workers_.size(); ++w)
    workers_[w]->thread = std::thread([this, w] { worker(*workers_[w], w == 0); });
}

void Engine::stop() {
  if (stop_.exchange(true)) return;
  wake_.notify_all();
  for (auto& c : cameras_) c->frame_cv.notify_all();
  for (auto& w : workers_)
    if (w->thread.joinable()) w->thread.join();
  for (auto& c : cameras_) {
    // stats() and prometheus_metrics() (HTTP, MQTT threads) read the feed under the camera's
    // mutex: take it out under that mutex, then join its capture thread outside it.
    std::unique_ptr<CameraFeed> feed;
    {
      std::lock_guard<std::mutex> lock(c->mutex);
      feed = std::move(c->feed);
    }
    feed.reset();
  }
  // Tracks still open are history too: end them now.
  for (auto& c : cameras_) finish_open_tracks(*c);
  if (const size_t lost = history_->retry())
    spdlog::error("storage: {} history row(s) could not be written before stopping: {}", lost, history_->last_error());
  bus_.close();
}

Engine::Camera* Engine::find(const std::string& name) const {
  for (const auto& c : cameras_)
    if (c->config.name == name) return c.get();
  return nullptr;
}

bool Engine::has_camera(const std::string& name) const { return find(name) != nullptr; }

std::vector<std::string> Engine::camera_names() const {
  std::vector<std::string> out;
  for (const auto& c : cameras_) out.push_back(c->config.name);
  return out;
}

void Engine::on_status(Camera& cam, CameraStatus status, const std::string& detail) {
  const double now = unix_now();
  spdlog::info("camera {}: {} ({})", cam.config.name, status_name(status), detail);
  history_->add_status(cam.config.name, now, status_name(status), detail);
  bus_.publish(StatusChanged{cam.config.name, status, detail, now});
}

void Engine::worker(Worker& me, bool housekeeping) {
  auto next_retention = std::chrono::steady_clock::now();
  auto next_history_retry = std::chrono::steady_clock::now();
  while (!stop_) {
    bool did = false;
    for (size_t k = 0; k < cameras_.size() && !did; ++k) {
      const size_t at = (me.next + k) % cameras_.size();
      Camera& cam = *cameras_[at];
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
      cv::Mat frame;
      int64_t index = 0;
      double t = 0;
      std::chrono::steady_clock::time_point captured;
      if (!cam.feed->take(frame, index, t, &captured)) continue;
      const auto now = std::chrono::steady_clock::now();
      if (!cam.pacer.admit(t)) {  // fps_limit, by capture time
        std::lock_guard<std::mutex> lock(cam.mutex);
        ++cam.skipped;
        continue;
      }
      cam.last_processed = now;
      me.next = (at + 1) % cameras_.size();  // fairness: the next camera goes first next time
      did = release.processed = true;
      if (!cam.detect) {
        show_undetected(cam, std::move(frame));
        continue;
      }
      try {
        cam.pipeline->bind(*me.classifier, *me.detector);
        process(cam, std::move(frame), index, t, captured);
      } catch (const std::exception& e) {
        spdlog::error("camera {}: frame {}: {}", cam.config.name, index, e.what());
      }
    }
    if (housekeeping && std::chrono::steady_clock::now() > next_history_retry) {
      history_->retry();
      next_history_retry = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    }
    if (housekeeping && std::chrono::steady_clock::now() > next_retention) {
      try {
        const int removed =
            storage_.apply_retention(config_.storage.retention_days, config_.storage.max_disk_mb, unix_now());
        if (removed) spdlog::info("retention: removed {} old snapshot(s)", removed);
      } catch (const std::exception& e) {
        spdlog::error("retention: {}", e.what());
      }
      next_retention = std::chrono::steady_clock::now() + std::chrono::hours(1);
    }
    if (!did) {
      std::unique_lock<std::mutex> lock(wake_mutex_);
      wake_.wait_for(lock, std::chrono::milliseconds(20));
    }
  }
}

void Engine::process(Camera& cam, cv::Mat frame, int64_t index, double time_s,
                     std::chrono::steady_clock::time_point captured) {
  const double now = unix_now();
  const bool detect = cam.motion.needs_detection(frame, time_s);
  FrameResult r = detect ? cam.pipeline->process(frame, index, time_s)
                         : cam.pipeline->process_with_last_faces(frame, index, time_s);
  LedgerUpdate news = cam.ledger.observe(r, frame, now);
  for (auto& v : news.verdicts) bus_.publish(FaceVerdict{cam.config.name, std::move(v)});
  for (auto& t : news.ended) finish_track(cam, std::move(t));

  {
    std::lock_guard<std::mutex> lock(hist_mutex_);
    const double stage_s[3] = {r.times.detect_ms / 1000, r.times.classify_ms / 1000, r.times.track_ms / 1000};
    for (int i = detect ? 0 : 1; i < 3; ++i) stage_hist_[i]->add(stage_s[i]);  // no detection: no detect time
  }
  {
    std::lock_guard<std::mutex> lock(cam.mutex);
    // FPS from the processing starts (paced by fps_limit) of the last few seconds, counted:
    // completion times bunch up when one frame takes longer than the next, and the pacer
    // spaces frames unevenly (10 of 15 fps: gaps of 1 and 2 source frames), so neither 1/dt
    // nor an average that starts from the first gap says the rate.
    const auto start = cam.last_processed;
    cam.recent_starts.push_back(start);
    while (start - cam.recent_starts.front() > kRateWindow) cam.recent_starts.pop_front();
    const double span = std::chrono::duration<double>(start - cam.recent_starts.front()).count();
    if (cam.recent_starts.size() >= 3 && span > 0)  // two gaps at least: one could be a short one
      cam.process_fps = static_cast<double>(cam.recent_starts.size() - 1) / span;
    // Capture to result: waiting for a worker, detection, classification, bookkeeping.
    cam.latencies_ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - captured).count());
    if (cam.latencies_ms.size() > kLatencyFrames) cam.latencies_ms.pop_front();
    ++cam.seq;
    cam.raw = frame;
    cam.overlay.fps = cam.process_fps;
    ++cam.processed;
    if (!detect) ++cam.without_detection;
    cam.faces_now = static_cast<int>(r.faces.size());
    cam.now_by_label.clear();
    for (const auto& f : r.faces) ++cam.now_by_label[verdict_name(f.verdict, classes())];
    cam.in_view_by_label = by_label(cam.ledger.in_view());
    cam.result = std::move(r);
  }
  cam.frame_cv.notify_all();
}

void Engine::finish_open_tracks(Camera& cam) {
  for (auto& t : cam.ledger.end_all()) finish_track(cam, std::move(t));
}

std::map<std::string, int> Engine::by_label(const std::map<int, int>& by_verdict) const {
  std::map<std::string, int> out;
  for (const auto& [verdict, n] : by_verdict) out[verdict_name(verdict, classifier_.classes())] += n;
  return out;
}

std::map<std::string, int> Engine::faces_in_view(const std::string& camera) const {
  std::map<std::string, int> out;
  for (const auto& c : cameras_) {
    if (!camera.empty() && c->config.name != camera) continue;
    std::lock_guard<std::mutex> lock(c->mutex);
    for (const auto& [label, n] : c->in_view_by_label) out[label] += n;
  }
  return out;
}

void Engine::show_undetected(Camera& cam, cv::Mat frame) {
  finish_open_tracks(cam);
  std::lock_guard<std::mutex> lock(cam.mutex);
  // Nothing is processed: the rate is 0, and it starts afresh when detection is back (the
  // pause is no interval between processed frames).
  cam.process_fps = 0;
  cam.recent_starts.clear();
  cam.overlay.fps = 0;
  ++cam.seq;
  cam.raw = std::move(frame);
  cam.result = FrameResult{};
  ++cam.skipped;
  cam.faces_now = 0;
  cam.now_by_label.clear();
  cam.in_view_by_label.clear();
  cam.frame_cv.notify_all();
}

bool Engine::set_detect(const std::string& camera, bool on) {
  Camera* cam = find(camera);
  if (!cam) return false;
  if (cam->detect.exchange(on) != on) spdlog::info("camera {}: detection {}", camera, on ? "on" : "off");
  return true;
}

bool Engine::detect_enabled(const std::string& camera) const {
  const Camera* cam = find(camera);
  return cam && cam->detect;
}

void Engine::finish_track(Camera& cam, TrackEnded t) {
  {
    // Out of the faces in view (the ledger has let it go) before it is counted as finished:
    // no moment counts it twice.
    std::lock_guard<std::mutex> lock(cam.mutex);
    cam.in_view_by_label = by_label(cam.ledger.in_view());
  }
  TrackEvent e;
  e.camera = cam.config.name;
  e.track_id = t.track_id;
  e.start = t.start_time;
  e.end = t.end_time;
  e.label = verdict_name(t.verdict, classifier_.classes());
  e.score = t.top_score;
  e.x1 = t.box.x;
  e.y1 = t.box.y;
  e.x2 = t.box.x + t.box.width;
  e.y2 = t.box.y + t.box.height;
  if (!t.snapshot.empty()) {
    e.snapshot = fmt::format("{:.0f}-{}-{}.jpg", t.start_time * 1000, cam.config.name, t.track_id);
    try {
      const auto bytes = encode_jpeg(t.snapshot, 90);
      write_file_atomic(storage_.snapshot_dir() / e.snapshot, bytes.data(), bytes.size());
    } catch (const std::exception& ex) {
      spdlog::error("snapshot {}: {}", e.snapshot, ex.what());
      e.snapshot.clear();
    }
    t.snapshot.release();
  }
  const int64_t id = history_->add_track(e);  // 0 while storage fails: then no URL yet
  {
    std::lock_guard<std::mutex> lock(cam.mutex);
    ++cam.faces_total[e.label];
  }
  const std::string url = e.snapshot.empty() || id == 0 ? "" : fmt::format("/api/events/{}/snapshot.jpg", id);
  bus_.publish(FaceEnded{cam.config.name, std::move(t), id, url});
}

std::shared_ptr<const Jpeg> Engine::latest_jpeg(const std::string& camera, bool boxes, int h, int quality) const {
  const Camera* cam = find(camera);
  if (!cam) return nullptr;
  if (quality <= 0) quality = config_.http.jpeg_quality;
  const auto key = std::make_tuple(boxes, h, quality);
  std::lock_guard<std::mutex> encoding(cam->encode_mutex);
  cv::Mat raw;
  FrameResult result;
  OverlayStatus overlay;
  int64_t seq = 0;
  {
    std::lock_guard<std::mutex> lock(cam->mutex);
    if (cam->raw.empty()) return nullptr;
    if (cam->jpegs_seq == cam->seq) {
      if (auto it = cam->jpegs.find(key); it != cam->jpegs.end()) return it->second;
    }
    raw = cam->raw;  // shared, never written: the worker stores a new Mat per frame
    seq = cam->seq;
    if (boxes) result = cam->result, overlay = cam->overlay, overlay.times.draw_ms = cam->last_draw_ms;
  }
  // Drawn and encoded outside the camera's lock: the worker goes on with the next frame.
  Stopwatch draw_clock;
  const cv::Mat img = boxes ? annotate_frame(raw, result, classifier_.classes(), overlay) : raw;
  const double draw_s = draw_clock.ms() / 1000;
  Stopwatch encode_clock;
  auto j = std::make_shared<Jpeg>();
  j->bytes = encode_jpeg(scaled_to_height(img, h), quality);
  j->seq = seq;
  const double encode_s = encode_clock.ms() / 1000;
  if (boxes) {
    std::lock_guard<std::mutex> lock(hist_mutex_);
    stage_hist_[3]->add(draw_s);
    stage_hist_[4]->add(encode_s);
  }
  std::lock_guard<std::mutex> lock(cam->mutex);
  if (boxes) cam->last_draw_ms = draw_s * 1000;
  if (cam->jpegs_seq != seq) cam->jpegs.clear(), cam->jpegs_seq = seq;
  if (cam->jpegs.size() > 8) cam->jpegs.clear();
  cam->jpegs.emplace(key, j);
  return j;
}

bool Engine::wait_for_frame(const std::string& camera, int64_t after_seq, std::chrono::milliseconds timeout) const {
  const Camera* cam = find(camera);
  if (!cam) return false;
  std::unique_lock<std::mutex> lock(cam->mutex);
  return cam->frame_cv.wait_for(lock, timeout, [&] { return cam->seq > after_seq || stop_; }) && !stop_;
}

bool Engine::add_stream_client(const std::string& camera) {
  Camera* cam = find(camera);
  if (!cam) return false;
  int n = cam->stream_clients.load();
  do {
    if (n >= config_.http.max_stream_clients) return false;
  } while (!cam->stream_clients.compare_exchange_weak(n, n + 1));
  return true;
}

void Engine::remove_stream_client(const std::string& camera) {
  if (Camera* cam = find(camera)) --cam->stream_clients;
}

nlohmann::json Engine::stats() const {
  nlohmann::json cams = nlohmann::json::object();
  for (const auto& c : cameras_) {
    std::lock_guard<std::mutex> lock(c->mutex);
    const CameraStatus status = c->feed ? c->feed->status() : CameraStatus::Offline;
    nlohmann::json now_by_label = nlohmann::json::object();
    for (const auto& label : classifier_.classes()) now_by_label[label] = 0;
    now_by_label["uncertain"] = 0;
    for (const auto& [k, v] : c->now_by_label) now_by_label[k] = v;
    const auto& mask_label = classifier_.classes()[static_cast<size_t>(mask_class_)];
    cams[c->config.name] = {{"status", status_name(status)},
                            {"status_detail", c->feed ? c->feed->status_detail() : ""},
                            {"camera_fps", c->feed ? c->feed->camera_fps() : 0.0},
                            {"process_fps", status == CameraStatus::Online ? c->process_fps : 0.0},
                            {"fps_limit", c->config.fps_limit},
                            {"frames_captured", c->feed ? c->feed->frames_captured() : 0},
                            {"frames_processed", c->processed},
                            {"frames_without_detection", c->without_detection},
                            {"frames_skipped", c->skipped},
                            {"frames_dropped", c->feed ? c->feed->frames_dropped() : 0},
                            {"faces_now", c->faces_now},
                            {"with_mask_now", now_by_label[mask_label]},
                            {"faces_now_by_label", now_by_label},
                            {"stream_clients", c->stream_clients.load()},
                            {"detect", c->detect.load()},
                            {"latency_ms_p50", percentile_of(c->latencies_ms, 0.5)},
                            {"latency_ms_p99", percentile_of(c->latencies_ms, 0.99)}};
  }
  nlohmann::json stages = nlohmann::json::object();
  {
    std::lock_guard<std::mutex> lock(hist_mutex_);
    for (int i = 0; i < 5; ++i)
      stages[kStageNames[i]] = stage_hist_[i]->n ? 1000 * stage_hist_[i]->sum / stage_hist_[i]->n : 0.0;
  }
  const nlohmann::json storage = {{"pending_rows", history_->pending()},
                                  {"dropped_rows", history_->dropped()},
                                  {"error", history_->last_error()},
                                  {"reopened", storage_.reopened()}};
  return {{"cameras", cams},
          {"inference_ms_mean", stages},
          {"uptime_s", unix_now() - started_unix_},
          {"workers", workers_.size()},
          {"classes", classifier_.classes()},
          {"storage", storage}};
}

std::string Engine::prometheus_metrics() const {
  std::string out;
  out += "# HELP maskwatch_camera_up 1 when the camera delivers frames.\n# TYPE maskwatch_camera_up gauge\n";
  for (const auto& c : cameras_) {
    std::lock_guard<std::mutex> lock(c->mutex);
    out += fmt::format("maskwatch_camera_up{{camera=\"{}\"}} {}\n", c->config.name,
                       c->feed && c->feed->status() == CameraStatus::Online ? 1 : 0);
  }
  out +=
      "# HELP maskwatch_camera_frames_total Frames per camera by what happened to them.\n"
      "# TYPE maskwatch_camera_frames_total counter\n";
  for (const auto& c : cameras_) {
    std::lock_guard<std::mutex> lock(c->mutex);
    const int64_t dropped = c->feed ? c->feed->frames_dropped() : 0;
    for (const auto& [result, n] :
         {std::pair<const char*, int64_t>{"processed", c->processed}, {"skipped", c->skipped}, {"dropped", dropped}})
      out +=
          fmt::format("maskwatch_camera_frames_total{{camera=\"{}\",result=\"{}\"}} {}\n", c->config.name, result, n);
  }
  out += "# HELP maskwatch_faces_total Finished face tracks by final verdict.\n# TYPE maskwatch_faces_total counter\n";
  for (const auto& c : cameras_) {
    std::lock_guard<std::mutex> lock(c->mutex);
    for (const auto& [state, n] : c->faces_total)
      out += fmt::format("maskwatch_faces_total{{camera=\"{}\",state=\"{}\"}} {}\n", c->config.name, state, n);
  }
  out += "# HELP maskwatch_stream_clients MJPEG viewers now.\n# TYPE maskwatch_stream_clients gauge\n";
  for (const auto& c : cameras_)
    out += fmt::format("maskwatch_stream_clients{{camera=\"{}\"}} {}\n", c->config.name, c->stream_clients.load());
  out += fmt::format(
      "# HELP maskwatch_storage_pending_rows History rows waiting in memory for the disk.\n"
      "# TYPE maskwatch_storage_pending_rows gauge\nmaskwatch_storage_pending_rows {}\n"
      "# HELP maskwatch_storage_dropped_rows_total History rows dropped because too many waited.\n"
      "# TYPE maskwatch_storage_dropped_rows_total counter\nmaskwatch_storage_dropped_rows_total {}\n",
      history_->pending(), history_->dropped());
  out +=
      "# HELP maskwatch_inference_seconds Time per processed frame by stage.\n"
      "# TYPE maskwatch_inference_seconds histogram\n";
  {
    std::lock_guard<std::mutex> lock(hist_mutex_);
    for (int i = 0; i < 5; ++i) {
      const auto& h = *stage_hist_[i];
      uint64_t cum = 0;
      for (size_t b = 0; b < kBucketCount; ++b) {
        cum += h.counts[b];
        out += fmt::format("maskwatch_inference_seconds_bucket{{stage=\"{}\",le=\"{}\"}} {}\n", kStageNames[i],
                           kBuckets[b], cum);
      }
      out += fmt::format("maskwatch_inference_seconds_bucket{{stage=\"{}\",le=\"+Inf\"}} {}\n", kStageNames[i], h.n);
      out += fmt::format("maskwatch_inference_seconds_sum{{stage=\"{}\"}} {}\n", kStageNames[i], h.sum);
      out += fmt::format("maskwatch_inference_seconds_count{{stage=\"{}\"}} {}\n", kStageNames[i], h.n);
    }
  }
  return out;
}

}  // namespace maskwatch
