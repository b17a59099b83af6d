#include "vision/motion_gate.h"

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>

#include "media/area_resize.h"

namespace maskwatch {

namespace {
constexpr int kWidth = 80;
}

MotionGate::MotionGate(const MotionOptions& options) : opts_(options) {}

bool MotionGate::needs_detection(const cv::Mat& bgr, double t_s) {
  if (!opts_.enabled || bgr.empty()) return true;
  const int h = std::max(1, static_cast<int>(std::lround(static_cast<double>(bgr.rows) * kWidth / bgr.cols)));
  shrink_area(bgr, small_, cv::Size(kWidth, h));
  if (small_.channels() == 3)
    cv::cvtColor(small_, grey_, cv::COLOR_BGR2GRAY);
  else
    small_.copyTo(grey_);
  bool moved = true;
  if (bgr.size() == frame_size_ && reference_.size() == grey_.size()) {
    cv::absdiff(grey_, reference_, diff_);
    const int changed = cv::countNonZero(diff_ > opts_.threshold);
    changed_ = static_cast<double>(changed) / static_cast<double>(diff_.total());
    moved = changed_ >= opts_.min_area;
  }
  const bool due = !have_detection_ || t_s - last_detection_s_ >= opts_.full_every_s || t_s < last_detection_s_;
  if (moved || due) {
    last_detection_s_ = t_s;
    have_detection_ = true;
    std::swap(reference_, grey_);
    frame_size_ = bgr.size();
    return true;
  }
  return false;
}

}  // namespace maskwatch
