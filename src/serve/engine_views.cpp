// The reading side of the engine, for HTTP and MQTT threads: the newest frame as JPEG (drawn
// and encoded lazily, once per frame and size), viewers, stats and metrics; cameras by name
// and their switches (detection on/off, privacy).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>

#include "media/image_codec.h"
#include "serve/engine_camera.h"
#include "util/files.h"
#include "util/percentile.h"
#include "util/stopwatch.h"
#include "vision/events.h"

namespace maskwatch {
namespace {

cv::Mat scaled_to_height(const cv::Mat& img, int h) {
  if (h <= 0 || h == img.rows) return img;
  cv::Mat out;
  const int w = std::max(1, static_cast<int>(std::lround(img.cols * static_cast<double>(h) / img.rows)));
  cv::resize(img, out, cv::Size(w, h), 0, 0, h < img.rows ? cv::INTER_AREA : cv::INTER_LINEAR);
  return out;
}

}  // namespace

std::map<std::string, int> Engine::faces_in_view(const std::string& camera, const std::string& zone) const {
  std::map<std::string, int> out;
  for (const auto& c : *cameras()) {
    if (!camera.empty() && c->config.name != camera) continue;
    std::lock_guard<std::mutex> lock(c->mutex);
    if (zone.empty()) {
      for (const auto& [label, n] : c->in_view_by_label) out[label] += n;
    } else if (auto it = c->in_view_by_zone.find(zone); it != c->in_view_by_zone.end()) {
      for (const auto& [label, n] : it->second) out[label] += n;
    }
  }
  return out;
}

std::vector<ComplianceBucket> Engine::compliance(const std::string& camera, double after, double before,
                                                 int64_t interval_s, const std::string& zone) const {
  auto buckets = storage_.compliance(camera, after, before, interval_s, zone, mask_label());
  // Faces still in view count in the bucket of now, where their track will end.
  const double now = unix_now();
  if (now < after || now >= before) return buckets;
  const auto in_view = faces_in_view(camera, zone);
  if (in_view.empty()) return buckets;
  const int64_t start = static_cast<int64_t>(std::floor(now / 60)) * 60 / interval_s * interval_s;
  auto it = std::find_if(buckets.begin(), buckets.end(), [&](const auto& b) { return b.start >= start; });
  if (it == buckets.end() || it->start != start) it = buckets.insert(it, ComplianceBucket{start});
  for (const auto& [label, n] : in_view) {
    (label == mask_label() ? it->with_mask : label == "uncertain" ? it->uncertain : it->without_mask) += n;
    it->faces += n;
    it->in_view += n;
  }
  return buckets;
}

bool Engine::has_zone(const std::string& camera, const std::string& zone) const {
  for (const auto& c : *cameras())
    if (camera.empty() || c->config.name == camera)
      for (const auto& z : c->config.zones)
        if (z.include && z.name == zone) return true;
  return false;
}

std::shared_ptr<const Jpeg> Engine::latest_jpeg(const std::string& camera, bool boxes, int h, int quality) const {
  const auto cam = find(camera);
  if (!cam) return nullptr;
  if (quality <= 0) quality = config_.http.jpeg_quality;
  const auto key = std::make_tuple(boxes, h, quality);
  std::lock_guard<std::mutex> encoding(cam->encode_mutex);
  cv::Mat raw;
  std::vector<cv::Rect2f> face_boxes;
  bool faces_known = false;
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
    face_boxes = cam->face_boxes;
    faces_known = cam->faces_known;
    seq = cam->seq;
    if (boxes) result = cam->result, overlay = cam->overlay, overlay.times.draw_ms = cam->last_draw_ms;
  }
  // Drawn and encoded outside the camera's lock: the worker goes on with the next frame.
  Stopwatch draw_clock;
  cv::Mat img = raw;
  if (cam->config.privacy != FacePrivacy::Full) {  // before anything is drawn or encoded
    img = raw.clone();
    if (faces_known)
      hide_faces(img, face_boxes, cam->config.detector.margin, cam->config.privacy);
    else
      hide_all(img, cam->config.privacy);
  }
  if (boxes) img = annotate_frame(img, result, classifier_.classes(), overlay);
  const double draw_s = draw_clock.ms() / 1000;
  Stopwatch encode_clock;
  auto j = std::make_shared<Jpeg>();
  j->bytes = encode_jpeg(scaled_to_height(img, h), quality);
  j->seq = seq;
  const double encode_s = encode_clock.ms() / 1000;
  if (boxes) {
    std::lock_guard<std::mutex> lock(hist_mutex_);
    stage_hist_[3].add(draw_s);
    stage_hist_[4].add(encode_s);
  }
  std::lock_guard<std::mutex> lock(cam->mutex);
  if (boxes) cam->last_draw_ms = draw_s * 1000;
  if (cam->jpegs_seq != seq) cam->jpegs.clear(), cam->jpegs_seq = seq;
  if (cam->jpegs.size() > 8) cam->jpegs.clear();
  cam->jpegs.emplace(key, j);
  return j;
}

bool Engine::wait_for_frame(const std::string& camera, int64_t after_seq, std::chrono::milliseconds timeout) const {
  const auto cam = find(camera);
  if (!cam) return false;
  std::unique_lock<std::mutex> lock(cam->mutex);
  // A camera replaced by a reconfiguration wakes its viewers: they find its successor.
  return cam->frame_cv.wait_for(lock, timeout, [&] { return cam->seq > after_seq || stop_ || cam->retired; }) &&
         !stop_;
}

bool Engine::add_stream_client(const std::string& camera) {
  if (!find(camera)) return false;
  std::lock_guard<std::mutex> lock(viewers_mutex_);
  int& n = viewers_[camera];
  if (n >= config_.http.max_stream_clients) return false;
  ++n;
  return true;
}

void Engine::remove_stream_client(const std::string& camera) {
  std::lock_guard<std::mutex> lock(viewers_mutex_);
  if (auto it = viewers_.find(camera); it != viewers_.end() && it->second > 0) --it->second;
}

int Engine::viewers(const std::string& camera) const {
  std::lock_guard<std::mutex> lock(viewers_mutex_);
  const auto it = viewers_.find(camera);
  return it == viewers_.end() ? 0 : it->second;
}

std::vector<std::pair<std::string, CameraStats>> Engine::camera_stats() const {
  std::vector<std::pair<std::string, CameraStats>> out;
  for (const auto& c : *cameras()) {
    std::lock_guard<std::mutex> lock(c->mutex);
    CameraStats s;
    if (c->feed) {
      s.status = c->feed->status();
      s.status_detail = c->feed->status_detail();
      s.camera_fps = c->feed->camera_fps();
      s.frames_captured = c->feed->frames_captured();
      s.frames_dropped = c->feed->frames_dropped();
    }
    s.process_fps = s.status == CameraStatus::Online ? c->processing.rate(std::chrono::steady_clock::now()) : 0.0;
    s.fps_limit = c->config.fps_limit;
    s.frames_processed = c->processed;
    s.frames_without_detection = c->without_detection;
    s.frames_skipped = c->skipped;
    s.faces_now = c->faces_now;
    for (const auto& label : classifier_.classes()) s.faces_now_by_label[label] = 0;
    s.faces_now_by_label["uncertain"] = 0;
    for (const auto& [k, v] : c->now_by_label) s.faces_now_by_label[k] = v;
    s.with_mask_now = s.faces_now_by_label[mask_label()];
    s.faces_total = c->faces_total;
    s.stream_clients = viewers(c->config.name);
    s.detect = c->detect.load();
    s.latency_ms_p50 = percentile(c->latencies_ms, 0.5);
    s.latency_ms_p99 = percentile(c->latencies_ms, 0.99);
    out.emplace_back(c->config.name, std::move(s));
  }
  return out;
}

nlohmann::json to_json(const CameraStats& s) {
  return {{"status", status_name(s.status)},
          {"status_detail", s.status_detail},
          {"camera_fps", s.camera_fps},
          {"process_fps", s.process_fps},
          {"fps_limit", s.fps_limit},
          {"frames_captured", s.frames_captured},
          {"frames_processed", s.frames_processed},
          {"frames_without_detection", s.frames_without_detection},
          {"frames_skipped", s.frames_skipped},
          {"frames_dropped", s.frames_dropped},
          {"faces_now", s.faces_now},
          {"with_mask_now", s.with_mask_now},
          {"faces_now_by_label", s.faces_now_by_label},
          {"stream_clients", s.stream_clients},
          {"detect", s.detect},
          {"latency_ms_p50", s.latency_ms_p50},
          {"latency_ms_p99", s.latency_ms_p99}};
}

nlohmann::json Engine::stats() const {
  nlohmann::json cams = nlohmann::json::object();
  for (const auto& [name, s] : camera_stats()) cams[name] = to_json(s);
  nlohmann::json stages = nlohmann::json::object();
  {
    std::lock_guard<std::mutex> lock(hist_mutex_);
    for (int i = 0; i < 5; ++i) stages[kStageNames[i]] = 1000 * stage_hist_[i].mean();
  }
  const nlohmann::json storage = {{"pending_rows", history_->pending()},
                                  {"dropped_rows", history_->dropped()},
                                  {"rejected_rows", history_->rejected()},
                                  {"written_rows", history_->written()},
                                  {"error", history_->last_error()},
                                  {"reopened", storage_.reopened()}};
  nlohmann::json clips = {{"enabled", clips_ != nullptr}};
  if (clips_)
    clips.update({{"written", clips_->written()},
                  {"failed", clips_->failed()},
                  {"frames_kept", clips_->frames_kept()},
                  {"frames_dropped", clips_->frames_dropped()},
                  {"frame_ms_total", clips_->frame_ms_total()},
                  {"clip_ms_total", clips_->clip_ms_total()}});
  return {{"cameras", cams},
          {"clips", clips},
          {"inference_ms_mean", stages},
          {"uptime_s", unix_now() - started_unix_},
          {"workers", workers_.size()},
          {"classes", classifier_.classes()},
          {"storage", storage}};
}

void Engine::prometheus_metrics(PromText& out) const {
  const auto cams = camera_stats();
  out.family("maskwatch_camera_up", "gauge", "1 when the camera delivers frames.");
  for (const auto& [name, s] : cams) out.sample("maskwatch_camera_up", s.status == CameraStatus::Online, {{"camera", name}});
  out.family("maskwatch_camera_frames_total", "counter", "Frames per camera by what happened to them.");
  for (const auto& [name, s] : cams)
    for (const auto& [result, n] : {std::pair<const char*, int64_t>{"processed", s.frames_processed},
                                    {"skipped", s.frames_skipped},
                                    {"dropped", s.frames_dropped}})
      out.sample("maskwatch_camera_frames_total", static_cast<double>(n), {{"camera", name}, {"result", result}});
  out.family("maskwatch_faces_total", "counter", "Finished face tracks by final verdict.");
  for (const auto& [name, s] : cams)
    for (const auto& [state, n] : s.faces_total)
      out.sample("maskwatch_faces_total", static_cast<double>(n), {{"camera", name}, {"state", state}});
  out.family("maskwatch_stream_clients", "gauge", "MJPEG viewers now.");
  for (const auto& [name, s] : cams) out.sample("maskwatch_stream_clients", s.stream_clients, {{"camera", name}});
  out.family("maskwatch_storage_pending_rows", "gauge", "History rows waiting in memory for the disk.")
      .sample("maskwatch_storage_pending_rows", static_cast<double>(history_->pending()));
  out.family("maskwatch_storage_dropped_rows_total", "counter", "History rows dropped because too many waited.")
      .sample("maskwatch_storage_dropped_rows_total", static_cast<double>(history_->dropped()));
  out.family("maskwatch_storage_rejected_rows_total", "counter",
             "History rows the database refused for good (a time that is not a number), dropped.")
      .sample("maskwatch_storage_rejected_rows_total", static_cast<double>(history_->rejected()));
  out.family("maskwatch_inference_seconds", "histogram", "Time per processed frame by stage.");
  std::lock_guard<std::mutex> lock(hist_mutex_);
  for (int i = 0; i < 5; ++i) out.histogram("maskwatch_inference_seconds", stage_hist_[i], {{"stage", kStageNames[i]}});
}

std::shared_ptr<const Engine::CameraList> Engine::cameras() const {
  std::lock_guard<std::mutex> lock(cameras_mutex_);
  return cameras_;
}

std::shared_ptr<Engine::Camera> Engine::find(const std::string& name) const {
  for (const auto& c : *cameras())
    if (c->config.name == name) return c;
  return nullptr;
}

bool Engine::has_camera(const std::string& name) const { return find(name) != nullptr; }

std::vector<std::string> Engine::camera_names() const {
  std::vector<std::string> out;
  for (const auto& c : *cameras()) out.push_back(c->config.name);
  return out;
}

bool Engine::set_detect(const std::string& camera, bool on) {
  const auto cam = find(camera);
  if (!cam) return false;
  if (cam->detect.exchange(on) != on) spdlog::info("camera {}: detection {}", camera, on ? "on" : "off");
  return true;
}

FacePrivacy Engine::privacy(const std::string& camera) const {
  const auto cam = find(camera);
  return cam ? cam->config.privacy : FacePrivacy::Blurred;
}

bool Engine::detect_enabled(const std::string& camera) const {
  const auto cam = find(camera);
  return cam && cam->detect;
}

}  // namespace maskwatch
