#include "serve/fleet.h"

#include <spdlog/spdlog.h>

#include <utility>
#include <vector>

namespace maskwatch {
namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() > tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// Integer payloads of the count topics; -1 when not a number.
long long count_of(const std::string& payload) {
  try {
    size_t used = 0;
    const long long v = std::stoll(payload, &used);
    return used == payload.size() ? v : -1;
  } catch (const std::exception&) {
    return -1;
  }
}

}  // namespace

FleetView::Site* FleetView::site_entry(const std::string& name) {
  if (const auto it = sites_.find(name); it != sites_.end()) return &it->second;
  if (sites_.size() >= kMaxSites) {
    // The site heard from longest ago that is not online makes room (junk topics would
    // otherwise hold every slot for good); with all of them online, the new one waits.
    auto oldest = sites_.end();
    for (auto it = sites_.begin(); it != sites_.end(); ++it)
      if (it->second.available != "online" && (oldest == sites_.end() || it->second.last_seen < oldest->second.last_seen))
        oldest = it;
    if (oldest == sites_.end()) {
      if (!std::exchange(warned_sites_full_, true))
        spdlog::warn("fleet: {} sites online already; topics of further sites (as {}) are left out", kMaxSites, name);
      return nullptr;
    }
    sites_.erase(oldest);
  }
  return &sites_[name];
}

nlohmann::json* FleetView::camera_entry(Site& site, const std::string& camera) {
  auto it = site.cameras.find(camera);
  if (it == site.cameras.end()) {
    if (site.cameras.size() >= kMaxCamerasPerSite) {
      if (!std::exchange(warned_cameras_full_, true))
        spdlog::warn("fleet: a site has {} cameras already; further cameras (as {}) are left out", kMaxCamerasPerSite,
                     camera);
      return nullptr;
    }
    it = site.cameras
             .emplace(camera, nlohmann::json{{"status", "unknown"},
                                             {"faces", nullptr},
                                             {"without_mask", nullptr},
                                             {"compliance", nullptr}})
             .first;
  }
  return &it->second;
}

bool FleetView::on_message(const std::string& topic, const std::string& payload, double now) {
  // Site topics: <site>/available|stats|events|alerts; camera topics: <site>/<camera>/<leaf>.
  for (const char* leaf : {"/available", "/stats", "/events", "/alerts"}) {
    if (!ends_with(topic, leaf)) continue;
    const std::string site = topic.substr(0, topic.size() - std::string(leaf).size());
    std::lock_guard<std::mutex> lock(mutex_);
    Site* s = site_entry(site);
    if (!s) return false;
    s->last_seen = now;
    if (std::string(leaf) == "/available") s->available = payload.substr(0, 32);
    return true;
  }
  // <site>/<camera>/detect/state: detection on or off there (ON/OFF).
  if (ends_with(topic, "/detect/state")) {
    const std::string rest = topic.substr(0, topic.size() - std::string("/detect/state").size());
    const auto slash = rest.rfind('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == rest.size() || payload.empty()) return false;
    std::lock_guard<std::mutex> lock(mutex_);
    Site* s = site_entry(rest.substr(0, slash));
    nlohmann::json* c = s ? camera_entry(*s, rest.substr(slash + 1)) : nullptr;
    if (!c) return false;
    (*c)["detect"] = payload == "ON";
    return true;
  }
  const auto last = topic.rfind('/');
  if (last == std::string::npos || last == 0) return false;
  const std::string leaf = topic.substr(last + 1);
  if (leaf != "status" && leaf != "faces" && leaf != "without_mask" && leaf != "compliance") return false;
  const auto cam_start = topic.rfind('/', last - 1);
  if (cam_start == std::string::npos) return false;
  const std::string site = topic.substr(0, cam_start), camera = topic.substr(cam_start + 1, last - cam_start - 1);
  if (site.empty() || camera.empty()) return false;
  std::lock_guard<std::mutex> lock(mutex_);
  Site* s = site_entry(site);
  if (!s) return false;
  s->last_seen = now;
  if (leaf == "status" && payload.empty()) {  // its retained state deleted: the camera was removed there
    s->cameras.erase(camera);
    return true;
  }
  nlohmann::json* entry = camera_entry(*s, camera);
  if (!entry) return false;
  auto& c = *entry;
  if (leaf == "status") {
    c["status"] = payload.substr(0, 32);
  } else if (leaf == "compliance") {
    const auto j = nlohmann::json::parse(payload, nullptr, false);
    if (!j.is_discarded() && j.is_object()) c["compliance"] = j;
  } else if (const long long v = count_of(payload); v >= 0) {
    c[leaf] = v;
  }
  return true;
}

void FleetView::set_broker_probe(std::function<bool()> probe) {
  std::lock_guard<std::mutex> lock(mutex_);
  broker_probe_ = std::move(probe);
}

nlohmann::json FleetView::to_json() const {
  std::lock_guard<std::mutex> lock(mutex_);
  const bool broker = !broker_probe_ || broker_probe_();
  nlohmann::json sites = nlohmann::json::array();
  for (const auto& [name, s] : sites_) {
    const bool live = broker && s.available == "online";
    nlohmann::json cams = nlohmann::json::object();
    for (const auto& [cam, c] : s.cameras) {
      cams[cam] = c;
      cams[cam]["stale"] = !live;
    }
    sites.push_back(
        {{"site", name}, {"available", s.available}, {"live", live}, {"last_seen", s.last_seen}, {"cameras", cams}});
  }
  return {{"broker_connected", broker}, {"sites", sites}};
}

}  // namespace maskwatch
