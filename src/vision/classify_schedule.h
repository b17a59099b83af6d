// Which faces of a frame go through the classifier. Classifying every face in every frame
// is the main cost of the real-time path (4 faces: ~4x the detector's time), yet a face that
// has been "with mask, 0.99" for a second rarely changes between two frames. A face is
// classified when:
//   - its track is new (no result yet);
//   - its track is unsure: no verdict, or the last result was below `sure` or disagreed
//     with the verdict (a change is under way: then every frame, as without scheduling);
//   - its box moved or changed size (IoU with the box of the last result < `moved_iou`);
//   - its last result is older than `refresh_s` (the oldest one such face per frame, which
//     spreads the refreshes of many faces over frames) or older than 2 x `refresh_s`
//     (always).
// A clean change (mask off) is thus seen at the latest 2 x refresh_s later, and from then on
// the verdict flips at the tracker's usual pace; tests/test_tracker.cpp measures it.
#pragma once
#include <vector>

#include "vision/tracker.h"

namespace maskwatch {

struct ClassifyScheduleOptions {
  double refresh_s = 0.2;  // 0: classify every face in every frame
  double sure = 0.9;       // a result below this keeps the face classified every frame
  double moved_iou = 0.6;  // box overlap with the last classified box below this: classify
};

// One flag per track status (same order): true = classify this face now.
std::vector<bool> faces_to_classify(const std::vector<TrackStatus>& tracks, double now,
                                    const ClassifyScheduleOptions& options);

}  // namespace maskwatch
