// Cameras added, removed and changed while the engine runs (Engine::reconfigure), and the
// start and end of one camera's life, which the first configuration uses too.
#include <spdlog/spdlog.h>

#include <chrono>
#include <thread>

#include "serve/engine_camera.h"

namespace maskwatch {

nlohmann::json CameraChanges::to_json() const {
  return {{"added", added}, {"removed", removed}, {"changed", changed}, {"unchanged", unchanged}, {"notes", notes}};
}

std::shared_ptr<Engine::Camera> Engine::make_camera(const CameraConfig& cc) {
  auto cam = std::make_shared<Camera>(
      cc, config_.storage, classifier_, detector_,
      [this](Camera& cam, CameraStatus s, const std::string& d) { on_status(cam, s, d); },
      [this] { wake_.notify_all(); });
  cam->keeps_clips = clips_ && keeps_clips(config_, cc);
  return cam;
}

void Engine::start_camera(Camera& cam) {
  if (cam.config.enabled)
    cam.feed->start();
  else
    cam.feed->disable("disabled in the config");
}

void Engine::retire(Camera& cam, const std::string& why) {
  // Claimed for good: no worker takes it again (one processing a frame of it finishes first).
  while (cam.busy.exchange(true, std::memory_order_acquire)) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  std::unique_ptr<Capture> feed;
  {
    std::lock_guard<std::mutex> lock(cam.mutex);
    feed = std::move(cam.feed);  // read by stats() under this mutex
  }
  feed.reset();  // joins its capture thread; no status callback after this
  finish_open_tracks(cam);
  if (clips_) clips_->forget(cam.config.name);  // clips asked for are written with what there is
  cam.retired = true;
  {
    std::lock_guard<std::mutex> lock(cam.mutex);
    cam.frame_cv.notify_all();  // its viewers wake and look for its successor
  }
  on_status(cam, CameraStatus::Disabled, why);
}

CameraChanges Engine::reconfigure(const std::vector<CameraConfig>& next) {
  std::lock_guard<std::mutex> one(reconfigure_mutex_);
  CameraChanges ch;
  if (stop_) {
    ch.notes.push_back("stopping: nothing changed");
    return ch;
  }
  const auto old = cameras();
  const auto old_named = [&](const std::string& name) -> std::shared_ptr<Camera> {
    for (const auto& c : *old)
      if (c->config.name == name) return c;
    return nullptr;
  };
  auto list = std::make_shared<CameraList>();
  std::vector<std::shared_ptr<Camera>> arriving;
  for (const auto& cc : next) {
    const auto before = old_named(cc.name);
    // The shared detector's model and input width are set once, at start: a camera that asks
    // for others gets a note, not a restart of its capture.
    const auto own = [](nlohmann::json j) {
      for (const char* shared : DetectorSettings::kSetAtStart) j["detector"].erase(shared);
      return j;
    };
    if (before) {
      const auto was = camera_json(before->config, false), now = camera_json(cc, false);
      if (was["detector"] != now["detector"] && own(was)["detector"] == own(now)["detector"])
        ch.notes.push_back(fmt::format("camera {}: the face model and detect_width are the shared detector's: a "
                                       "restart applies them",
                                       cc.name));
      if (own(was) == own(now)) {
        list->push_back(before);
        ch.unchanged.push_back(cc.name);
        continue;
      }
    }
    if (before) {
      retire(*before, "changed in the config; starting again");
      ch.changed.push_back(cc.name);
    } else {
      ch.added.push_back(cc.name);
    }
    auto cam = make_camera(cc);
    if (before) {
      std::lock_guard<std::mutex> lock(before->mutex);
      cam->seq = before->seq;  // its viewers wait for a frame newer than the last one they saw
      cam->faces_total = before->faces_total;
      cam->detect = before->detect.load();  // switched off by an operator: stays off
    }
    list->push_back(cam);
    arriving.push_back(std::move(cam));
  }
  for (const auto& c : *old) {
    const bool kept = std::any_of(next.begin(), next.end(), [&](const CameraConfig& cc) { return cc.name == c->config.name; });
    if (kept) continue;
    retire(*c, "removed from the config");
    ch.removed.push_back(c->config.name);
  }
  if (list->size() > workers_.size() && static_cast<int>(workers_.size()) < cv::getNumThreads())
    ch.notes.push_back(fmt::format("{} inference worker(s) for {} cameras until a restart", workers_.size(),
                                   list->size()));
  {
    std::lock_guard<std::mutex> lock(cameras_mutex_);
    cameras_ = std::move(list);
  }
  for (auto& c : arriving) start_camera(*c);
  wake_.notify_all();
  spdlog::info("reconfigured: {} added, {} removed, {} changed, {} unchanged", ch.added.size(), ch.removed.size(),
               ch.changed.size(), ch.unchanged.size());
  return ch;
}

}  // namespace maskwatch
