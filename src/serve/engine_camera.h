// Engine's per-camera state, shared by engine.cpp (the workers, which write it) and
// engine_views.cpp (HTTP and MQTT threads, which read it). Private to the engine.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "serve/engine.h"
#include "serve/frame_pacer.h"
#include "util/rate_meter.h"
#include "vision/capture.h"
#include "vision/motion_gate.h"
#include "vision/overlay.h"
#include "vision/track_ledger.h"

namespace maskwatch {

constexpr const char* kStageNames[5] = {"detect", "classify", "track", "draw", "encode"};

// Everything about one camera. Feed and pipeline are touched by the worker only; the
// outputs (frames, JPEG, live counts) are guarded by `mutex` for the HTTP threads.
constexpr size_t kLatencyFrames = 300;

struct Engine::Camera {
  // Its pipeline on the first worker's models; its capture (not started) reporting through
  // `on_status` and `on_frame`. Counts start at zero for every class.
  Camera(const CameraConfig& config, const StorageConfig& storage, MaskClassifier& classifier, FaceDetector& detector,
         std::function<void(Camera&, CameraStatus, const std::string&)> on_status, std::function<void()> on_frame);

  CameraConfig config;
  std::unique_ptr<Capture> feed;
  std::unique_ptr<Pipeline> pipeline;
  std::chrono::steady_clock::time_point last_processed{};
  FramePacer pacer;                                                 // fps_limit (worker thread only)
  MotionGate motion;                                                // the detector only where something moved
  RateMeter processing;                                             // processing starts (under mutex)
  TrackLedger ledger;  // its face tracks: starts, verdict changes, ends (worker thread only)

  mutable std::mutex mutex;
  mutable std::condition_variable frame_cv;
  // The newest processed frame and what was found in it. Its JPEGs are drawn and encoded
  // lazily, by the first HTTP thread that asks, once per frame and size: the worker never
  // pays for viewers, and with none watching nothing is encoded at all.
  cv::Mat raw;
  std::vector<cv::Rect2f> face_boxes;  // every face found in `raw` (hidden as config.privacy says)
  bool faces_known = false;            // false: no detector ran on `raw` (detection off)
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
  bool keeps_clips = false;  // an alert rule with a picture watches it: its frames go to the ClipRecorder
  std::map<int, std::string> track_clips;  // clips.unmasked_tracks: clip file by open track (worker only)
  std::atomic<bool> detect{true};
  std::atomic<bool> busy{false};  // claimed by a worker (Engine::worker), or for good when retired
  std::atomic<bool> retired{false};  // removed or replaced by a reconfiguration
  std::atomic<CameraStatus> last_status{CameraStatus::Starting};  // as history last wrote it
  std::deque<double> latencies_ms;  // capture to result, the last kLatencyFrames processed frames
  std::map<std::string, int> in_view_by_label;  // open tracks by their verdict so far
  std::map<std::string, std::map<std::string, int>> in_view_by_zone;  // the same, by include zone
};

}  // namespace maskwatch
