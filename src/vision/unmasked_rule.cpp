#include "vision/unmasked_rule.h"

namespace maskwatch {

void UnmaskedRule::on_verdict(const std::string& camera, const VerdictChanged& v) {
  const auto key = std::make_pair(camera, v.track_id);
  if (v.to == kUncertain) {
    // Not known to be unmasked; one that had fired stays fired until the mask is on.
    if (auto it = episodes_.find(key); it != episodes_.end() && !it->second.fired) episodes_.erase(it);
  } else if (v.to == mask_class_) {
    episodes_.erase(key);
  } else {
    episodes_.try_emplace(key, Episode{v.time, false});  // from one unmasked class to another: goes on
  }
}

void UnmaskedRule::on_end(const std::string& camera, int track_id) { episodes_.erase({camera, track_id}); }

std::optional<UnmaskedRule::Due> UnmaskedRule::next_due(double now, const std::string& camera) {
  for (auto& [key, e] : episodes_) {
    if (e.fired || (!camera.empty() && key.first != camera) || now - e.since < after_s_) continue;
    e.fired = true;
    return Due{key.first, key.second, e.since};
  }
  return std::nullopt;
}

}  // namespace maskwatch
