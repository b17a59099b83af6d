#include "vision/zones.h"

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>

namespace maskwatch {

namespace {

bool inside(const Zone& z, cv::Point2f p) { return cv::pointPolygonTest(z.points, p, false) >= 0; }

std::vector<cv::Point> in_pixels(const Zone& z, cv::Size frame) {
  std::vector<cv::Point> out;
  for (const auto& p : z.points)
    out.emplace_back(static_cast<int>(std::lround(p.x * frame.width)), static_cast<int>(std::lround(p.y * frame.height)));
  return out;
}

}  // namespace

ZonePlace place_face(const std::vector<Zone>& zones, const cv::Rect2f& box, cv::Size frame) {
  ZonePlace place;
  if (zones.empty()) return place;
  if (frame.width <= 0 || frame.height <= 0) {  // nowhere to place it: it counts only without include zones
    place.counts = std::none_of(zones.begin(), zones.end(), [](const Zone& z) { return z.include; });
    return place;
  }
  const cv::Point2f centre((box.x + box.width / 2) / frame.width, (box.y + box.height / 2) / frame.height);
  bool any_include = false, in_include = false;
  for (const auto& z : zones) {
    if (!z.include) {
      if (inside(z, centre)) return {false, ""};
      continue;
    }
    any_include = true;
    if (!in_include && inside(z, centre)) in_include = true, place.zone = z.name;
  }
  place.counts = !any_include || in_include;
  return place;
}

void draw_zones(cv::Mat& bgr, const std::vector<Zone>& zones) {
  const int thickness = std::max(1, bgr.cols / 400);
  for (const auto& z : zones) {
    const auto pts = in_pixels(z, bgr.size());
    const cv::Scalar colour = z.include ? cv::Scalar(255, 255, 0) : cv::Scalar(160, 160, 160);
    cv::polylines(bgr, pts, true, colour, thickness, cv::LINE_AA);
    const cv::Rect r = cv::boundingRect(pts);
    if (!z.include) {
      cv::line(bgr, r.tl(), r.br(), colour, thickness, cv::LINE_AA);
      cv::line(bgr, {r.x, r.y + r.height}, {r.x + r.width, r.y}, colour, thickness, cv::LINE_AA);
    }
    const double scale = std::max(0.4, bgr.cols / 1600.0);
    cv::putText(bgr, z.name, {r.x + 4, r.y + static_cast<int>(18 * scale / 0.5)}, cv::FONT_HERSHEY_SIMPLEX, scale,
                colour, thickness, cv::LINE_AA);
  }
}

}  // namespace maskwatch
