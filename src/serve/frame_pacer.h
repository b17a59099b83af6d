// fps_limit: which frames of a faster source to process, by their capture times. Each frame
// earns limit x (time since the previous frame) of credit, a processed frame costs one, and
// the credit is capped at two frames so a stall is not followed by a burst. A 15 fps source
// limited to 10 keeps two frames of every three, evenly spread (10 per second), where
// "at least 1/limit since the last processed frame" kept every other one (7.5 per second).
#pragma once

namespace maskwatch {

class FramePacer {
 public:
  explicit FramePacer(double fps_limit = 0) : limit_(fps_limit) {}
  // True: process the frame captured at `time_s` (seconds, any origin, non-decreasing).
  // A limit of 0 or less admits every frame.
  bool admit(double time_s);

 private:
  double limit_;
  bool started_ = false;
  double last_time_ = 0, credit_ = 0;
};

}  // namespace maskwatch
