// `run --alert-after S`: tells when a tracked face has shown a verdict other than the mask
// class (uncertain does not count) for S seconds of source time; once per episode (putting
// the mask on, or the track ending, ends it). The same rule as serve's `unmasked_face`
// alert, for the one-window case, where the action is the terminal bell.
#pragma once
#include <map>
#include <set>
#include <vector>

#include "vision/pipeline.h"

namespace maskwatch {

class UnmaskedAlarm {
 public:
  UnmaskedAlarm(double after_s, int mask_class) : after_s_(after_s), mask_class_(mask_class) {}
  // The faces of one frame; returns the track ids that reach the limit in it.
  std::vector<int> update(const FrameResult& r);

 private:
  double after_s_;
  int mask_class_;
  std::map<int, double> since_;  // track -> source time its unmasked episode began
  std::set<int> fired_;
  std::map<int, double> last_seen_;
};

}  // namespace maskwatch
