// Intersection over union of two boxes: the one overlap measure the tracker, the classifier's
// schedule, the fusion of several looks and the scene scorer share.
#pragma once
#include <opencv2/core.hpp>

namespace maskwatch {

// 0 when both boxes are empty.
inline double iou(const cv::Rect2f& a, const cv::Rect2f& b) {
  const float inter = (a & b).area();
  const float joined = a.area() + b.area() - inter;
  return joined > 0 ? inter / joined : 0.0;
}

}  // namespace maskwatch
