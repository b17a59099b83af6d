// The one "face without a mask for N seconds" rule: `run --alert-after` rings the bell with
// it, `serve`'s unmasked_face alerts fire with it. Fed the ledger's events (vision/
// track_ledger.h), not frames: an episode starts when a track's verdict becomes anything but
// the mask class (a chin mask's "incorrect" class too), "uncertain" pauses it (not known to
// be unmasked: the next unmasked verdict starts it afresh), the mask class or the track's end
// closes it. Each episode is due once, after_s after it started. The clock is whatever time
// the events and `next_due` are given, so it is tested without a model or a camera.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "vision/track_ledger.h"

namespace maskwatch {

class UnmaskedRule {
 public:
  UnmaskedRule(double after_s, int mask_class) : after_s_(after_s), mask_class_(mask_class) {}

  void on_verdict(const std::string& camera, const VerdictChanged& v);
  void on_end(const std::string& camera, int track_id);

  struct Due {
    std::string camera;
    int track_id = 0;
    double since = 0;  // when the episode began
  };
  // The next episode (of `camera`; empty: any) unmasked for after_s by `now` that has not been
  // due before; it is not due again. Callers that hold an alert back (cooldown, schedule)
  // simply do not ask.
  std::optional<Due> next_due(double now, const std::string& camera = "");

 private:
  struct Episode {
    double since = 0;
    bool fired = false;
  };
  double after_s_;
  int mask_class_;
  std::map<std::pair<std::string, int>, Episode> episodes_;
};

}  // namespace maskwatch
