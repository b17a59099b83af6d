// The `serve` engine: one Capture (vision/capture.h: capture thread) per camera and a few inference workers
// (`detector.workers`; default one per core, at most one per camera) shared by all of them.
// Each worker has its own face detector and classifier (the same files; their thread pools
// split the cores between the workers) and takes cameras round robin: it claims a camera,
// takes its newest frame, runs that camera's Pipeline (its own tracker and smoothing) on its
// models and lets the camera go, so a camera's frames are processed one at a time, in order,
// while different cameras overlap. Each camera is processed at most at its fps_limit
// (frames beyond are counted as skipped). The overlay is drawn and the JPEG encoded lazily, by the first HTTP
// thread that asks for a frame (once per frame and size; every viewer shares that buffer), so
// the worker never waits for viewers and nothing is encoded when nobody watches. Face tracks that end become rows in
// Storage with a snapshot of their best frame; verdict and status changes go to the EventBus.
#pragma once
#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "serve/clip_recorder.h"
#include "serve/config.h"
#include "serve/event_bus.h"
#include "serve/history_writer.h"
#include "serve/prometheus.h"
#include "serve/storage.h"
#include "vision/capture.h"
#include "vision/face_detector.h"
#include "vision/mask_classifier.h"
#include "vision/pipeline.h"
#include "vision/track_ledger.h"

namespace maskwatch {

// A processed frame's JPEG, shared (immutable) by every viewer.
struct Jpeg {
  std::vector<uchar> bytes;
  int64_t seq = 0;  // processed-frame number of its camera
};

// One camera's numbers, read at one moment (/api/stats, MQTT, /metrics).
struct CameraStats {
  CameraStatus status = CameraStatus::Offline;
  std::string status_detail;
  double camera_fps = 0, process_fps = 0, fps_limit = 0;
  int64_t frames_captured = 0, frames_processed = 0, frames_without_detection = 0, frames_skipped = 0,
          frames_dropped = 0;
  int faces_now = 0, with_mask_now = 0;
  std::map<std::string, int> faces_now_by_label;  // every class and "uncertain"
  std::map<std::string, int64_t> faces_total;     // finished tracks by final label
  int stream_clients = 0;
  bool detect = true;
  double latency_ms_p50 = 0, latency_ms_p99 = 0;  // capture to result
};
nlohmann::json to_json(const CameraStats& s);

// What a reconfiguration did to the cameras (Engine::reconfigure), by name.
// Whether `camera` keeps frames for clips: clips on, its faces may be stored (privacy not
// none), and clips.unmasked_tracks or an alert rule that comes with a picture
// (unmasked_face, low_compliance) watches it.
bool keeps_clips(const ServeConfig& config, const CameraConfig& camera);

struct CameraChanges {
  std::vector<std::string> added, removed, changed, unchanged;
  std::vector<std::string> notes;  // what waits for a restart
  nlohmann::json to_json() const;
};

class Engine {
 public:
  Engine(const ServeConfig& config, Storage& storage);
  ~Engine();  // stops the worker and the feeds, ends open tracks into storage
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  void start();
  void stop();
  // Live reconfiguration of the cameras (SIGHUP, POST /api/config/reload): cameras added,
  // removed or changed (any key) take effect now; the others go on untouched (their capture,
  // tracks, streams). A removed or changed camera ends its open tracks into the history; a
  // changed one starts afresh under the same name (its viewers stay). Call after start().
  CameraChanges reconfigure(const std::vector<CameraConfig>& cameras);

  bool has_camera(const std::string& name) const;
  std::vector<std::string> camera_names() const;
  const std::vector<std::string>& classes() const { return classifier_.classes(); }

  // The newest processed frame of `camera` as JPEG: with boxes (the shared buffer) or the
  // raw frame, scaled to height h (0 = as is). nullptr before the first frame.
  std::shared_ptr<const Jpeg> latest_jpeg(const std::string& camera, bool boxes = true, int h = 0,
                                          int quality = 0) const;
  // Waits until `camera` has a frame newer than after_seq (or timeout); false on timeout/stop.
  bool wait_for_frame(const std::string& camera, int64_t after_seq, std::chrono::milliseconds timeout) const;
  // MJPEG viewers: false when the cap is reached.
  bool add_stream_client(const std::string& camera);
  void remove_stream_client(const std::string& camera);

  // Turns detection for one camera on or off (MQTT detect/set): while off, its frames are
  // shown without boxes, its open tracks end and no verdict events come. False: no such camera.
  bool set_detect(const std::string& camera, bool on);
  // The camera's privacy mode (Blurred for an unknown camera); latest_jpeg already applies it.
  FacePrivacy privacy(const std::string& camera) const;
  bool detect_enabled(const std::string& camera) const;

  std::vector<std::pair<std::string, CameraStats>> camera_stats() const;  // in config order
  nlohmann::json stats() const;  // /api/stats: every camera's and the engine's
  // The faces in view now (open tracks) of `camera` (empty: all) and of one include zone
  // (empty: all), by the verdict each is counted by so far ("uncertain" when none yet):
  // what compliance counts before they end.
  std::map<std::string, int> faces_in_view(const std::string& camera = "", const std::string& zone = "") const;
  // Compliance in buckets of interval_s (Storage::compliance) with the faces in view now added
  // to the bucket of now (marked `in_view`): the one count /api/compliance, MQTT's compliance
  // topic and low_compliance alerts share. MQTT and the rule counted finished tracks only, so a
  // person unmasked at a counter all day read 0 % on the dashboard, nothing on MQTT and never
  // raised low_compliance (review of 2026-12-05).
  std::vector<ComplianceBucket> compliance(const std::string& camera, double after, double before,
                                           int64_t interval_s, const std::string& zone = "") const;
  // Whether any camera (or this one) has an include zone of this name.
  bool has_zone(const std::string& camera, const std::string& zone) const;
  HistoryWriter& history() { return *history_; }
  // Asks for a clip of `camera` around `time` (an alert's); returns its file name under
  // storage's clips/, or "" when the camera keeps none (clips off, privacy none, no rule
  // with a picture watches it).
  std::string request_clip(const std::string& camera, double time, const std::string& what);
  bool clip_pending(const std::string& file) const { return clips_ && clips_->pending(file); }
  const std::string& mask_label() const { return classes()[static_cast<size_t>(mask_class_)]; }
  int mask_class() const { return mask_class_; }
  void prometheus_metrics(PromText& out) const;
  EventBus& bus() { return bus_; }
  bool stopping() const { return stop_; }

 private:
  struct Camera;
  struct Worker;
  void worker(Worker& me);
  // History rows that wait for the disk, every 2 s, and retention, every 5 minutes: on a
  // thread of their own, so that a long retention pass never holds up a camera's frames.
  void housekeeping();
  void process(Camera& cam, SourceFrame frame);
  void end_faces_in_view(Camera& cam);  // offline or detection off: its tracks end, no face in view
  void show_undetected(Camera& cam, cv::Mat frame);  // detection off: the picture only
  void finish_track(Camera& cam, TrackEnded track);
  void refresh_in_view(Camera& cam) const;  // under cam.mutex
  void finish_open_tracks(Camera& cam);
  void on_status(Camera& cam, CameraStatus status, const std::string& detail);
  std::map<std::string, int> by_label(const std::map<int, int>& by_verdict) const;
  using CameraList = std::vector<std::shared_ptr<Camera>>;
  // The cameras now: a snapshot that stays valid while held (a reconfiguration swaps the list).
  std::shared_ptr<const CameraList> cameras() const;
  std::shared_ptr<Camera> find(const std::string& name) const;
  std::shared_ptr<Camera> make_camera(const CameraConfig& config);
  void start_camera(Camera& cam);
  void retire(Camera& cam, const std::string& why);  // stops it for good; its tracks end
  int viewers(const std::string& camera) const;

  ServeConfig config_;
  Storage& storage_;
  int workers_wanted_ = 1;  // before classifier_ and detector_: their thread counts depend on it
  int engine_threads_ = 0;
  MaskClassifier classifier_;
  FaceDetector detector_;
  int mask_class_ = 0;
  std::unique_ptr<HistoryWriter> history_;  // rows survive a full or read-only disk
  std::unique_ptr<ClipRecorder> clips_;     // null: clips off
  mutable std::mutex viewers_mutex_;
  std::map<std::string, int> viewers_;  // MJPEG viewers by camera name (a replaced camera keeps them)
  mutable std::mutex cameras_mutex_;  // guards the pointer, not the cameras
  std::shared_ptr<const CameraList> cameras_;
  std::mutex reconfigure_mutex_;  // one reconfiguration at a time
  EventBus bus_;
  mutable std::mutex wake_mutex_;
  std::condition_variable wake_;
  std::atomic<bool> stop_{false};
  std::vector<std::unique_ptr<Worker>> workers_;  // the first runs on classifier_ and detector_
  std::thread housekeeping_;
  std::condition_variable housekeeping_wake_;  // with wake_mutex_ (wake_ is the workers': a frame's notify_one is theirs)
  double started_unix_ = 0;
  mutable PromHistogram stage_hist_[5];  // detect, classify, track, draw, encode (draw/encode by HTTP threads)
  mutable std::mutex hist_mutex_;
};

}  // namespace maskwatch
