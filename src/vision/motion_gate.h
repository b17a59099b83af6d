// Decides whether a frame needs the face detector, the way NVRs run detection only where
// something moves: the frame is shrunk to 80 px wide grey (each pixel the mean of an 8x8
// block at 640x480, which averages sensor noise away) and compared with the frame the
// detector last ran on (not the previous frame: slow drift adds up until it counts); it
// moved when enough of those pixels changed by more than a threshold. A frame without motion
// shows the same faces as the last one that had the detector, so `serve` keeps them (the
// tracker goes on with the same boxes) instead of looking again; every `full_every_s` the
// detector runs anyway (a person who stands still, light that changes slowly).
#pragma once
#include <opencv2/core.hpp>

namespace maskwatch {

struct MotionOptions {
  bool enabled = true;
  int threshold = 10;       // grey levels (0-255) a shrunk pixel must change by
  double min_area = 0.002;  // share of the shrunk pixels that must change (0.002: 10 of 4,800)
  double full_every_s = 2;  // the detector runs at least this often
};

class MotionGate {
 public:
  explicit MotionGate(const MotionOptions& options = {});
  // Whether `bgr` (at frame time t_s) needs the detector: gating off, the first frame, a new
  // frame size, motion since the previous frame, or full_every_s since the last detection.
  // Call once per processed frame, in time order.
  bool needs_detection(const cv::Mat& bgr, double t_s);
  // Share of shrunk pixels that changed since the frame the detector last ran on.
  double changed_share() const { return changed_; }

 private:
  MotionOptions opts_;
  cv::Mat reference_, grey_, small_, diff_;  // reference_: the last frame that had the detector
  cv::Size frame_size_;
  double last_detection_s_ = 0;
  bool have_detection_ = false;
  double changed_ = 0;
};

}  // namespace maskwatch
