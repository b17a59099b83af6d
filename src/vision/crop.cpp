#include "vision/crop.h"

#include <algorithm>
#include <cmath>

namespace maskwatch {

cv::Rect square_crop(const cv::Rect2f& face, cv::Size frame, double margin) {
  if (frame.width <= 0 || frame.height <= 0) return {};
  const double cx = face.x + face.width / 2.0, cy = face.y + face.height / 2.0;
  int side = static_cast<int>(std::lround(std::max(face.width, face.height) * (1.0 + std::max(0.0, margin))));
  side = std::clamp(side, 1, std::min(frame.width, frame.height));
  int x = static_cast<int>(std::lround(cx - side / 2.0)), y = static_cast<int>(std::lround(cy - side / 2.0));
  x = std::clamp(x, 0, frame.width - side);
  y = std::clamp(y, 0, frame.height - side);
  return {x, y, side, side};
}

cv::Mat crop_face(const cv::Mat& frame, const cv::Rect2f& face, double margin) {
  return frame(square_crop(face, frame.size(), margin));
}

}  // namespace maskwatch
