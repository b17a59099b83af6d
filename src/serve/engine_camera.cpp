#include "serve/engine_camera.h"

#include <algorithm>

namespace maskwatch {

Engine::Camera::Camera(const CameraConfig& cc, const StorageConfig& storage, MaskClassifier& classifier,
                       FaceDetector& detector,
                       std::function<void(Camera&, CameraStatus, const std::string&)> on_status,
                       std::function<void()> on_frame)
    : config(cc),
      pacer(cc.fps_limit),
      motion(cc.motion),
      // The detector is shared by every camera; this camera's pipeline starts tracks at its
      // own threshold and keeps them down to its keep_score, so the ledger's floor is the lower
      // of the two. Privacy none: no face pixels kept, so no snapshots.
      ledger(LedgerOptions{static_cast<float>(std::min<double>(cc.detector.score_threshold, cc.tracker.keep_score)),
                           storage.snapshots && cc.privacy != FacePrivacy::None, 0.5,
                           cc.tracker.max_missed_s, cc.zones, mask_class_index(classifier.classes())}) {
  overlay.zones = cc.zones;
  PipelineOptions po;
  po.crop_margin = cc.detector.margin;
  po.schedule.refresh_s = cc.detector.reclassify_after_s;
  po.tracker = cc.tracker;
  po.start_score = cc.detector.score_threshold;
  pipeline = std::make_unique<Pipeline>(classifier, detector, po);
  for (const auto& label : classifier.classes()) faces_total[label] = 0;
  faces_total["uncertain"] = 0;
  CaptureOptions co;
  co.source.width = cc.width;
  co.source.height = cc.height;
  // One decoding thread per camera: cameras decode in parallel already, and FFmpeg's frame
  // threads (one per core each) held about 7 MiB per 640x480 H.264 camera for no gain
  // (16 cameras: 282 MiB against 392-401, cores 1.05-1.09 against 1.07-1.11; README).
  co.source.decoder_threads = 1;
  co.name = "camera " + cc.name;
  co.loop = cc.loop;
  co.mirror = cc.mirror;
  co.backoff_max_s = cc.reconnect_max_s;
  co.on_status = [this, on_status](CameraStatus s, const std::string& d) { on_status(*this, s, d); };
  co.on_frame = std::move(on_frame);
  feed = std::make_unique<Capture>(cc.source, std::move(co));
}

}  // namespace maskwatch
