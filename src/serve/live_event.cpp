#include "serve/live_event.h"

#include "vision/events.h"

namespace maskwatch {

nlohmann::json to_json(const AlertFired& a) {
  nlohmann::json j = {{"type", "alert"},     {"id", a.id},         {"rule", a.rule},
                      {"kind", a.kind},      {"camera", a.camera}, {"time", a.time},
                      {"message", a.message}, {"snapshot_url", a.snapshot_url}};
  if (!a.clip_url.empty()) j["clip_url"] = a.clip_url;
  if (a.track_id) j["track_id"] = *a.track_id;
  if (a.since) j["since"] = *a.since;
  if (a.compliance) j["compliance"] = *a.compliance;
  if (a.faces) j["faces"] = *a.faces;
  return j;
}

nlohmann::json to_json(const LiveEvent& e, const std::vector<std::string>& classes, ClipUrls clip_urls) {
  struct Visit {
    const std::vector<std::string>& classes;
    nlohmann::json operator()(const FaceVerdict& v) const {
      auto j = verdict_json(v.change, classes);
      j["camera"] = v.camera;
      return j;
    }
    nlohmann::json operator()(const FaceEnded& f) const {
      auto j = ended_json(f.track, classes);
      j["camera"] = f.camera;
      j["id"] = f.id;
      j["snapshot_url"] = f.snapshot_url;
      if (!f.clip_url.empty()) j["clip_url"] = f.clip_url;
      return j;
    }
    nlohmann::json operator()(const StatusChanged& s) const {
      return {{"type", "status"}, {"camera", s.camera}, {"status", status_name(s.status)}, {"detail", s.detail},
              {"time", s.time}};
    }
    nlohmann::json operator()(const AlertFired& a) const { return to_json(a); }
  };
  auto j = std::visit(Visit{classes}, e);
  if (clip_urls == ClipUrls::Hidden) j.erase("clip_url");
  return j;
}

}  // namespace maskwatch
