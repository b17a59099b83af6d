// Zones of a camera's picture: named polygons in frame-relative coordinates (0..1, x to the
// right, y down). `include` zones say where faces count: with any, a face counts only when
// its box centre lies inside one of them, and that zone is the face's. `exclude` zones say
// where faces never count (a poster, a screen, a mirror), whatever the include zones say.
// A face that does not count is not shown: no verdict, no event, no alert (TrackLedger drops
// it as it drops faces under the camera's threshold); privacy still hides it.
#pragma once
#include <opencv2/core.hpp>
#include <string>
#include <vector>

namespace maskwatch {

struct Zone {
  std::string name;
  bool include = true;              // false: exclude
  std::vector<cv::Point2f> points;  // at least three, frame-relative
};

struct ZonePlace {
  bool counts = true;
  std::string zone;  // the include zone holding the face's centre ("" without include zones)
};

// Where the face with this box (pixels) of a frame of this size stands.
ZonePlace place_face(const std::vector<Zone>& zones, const cv::Rect2f& box, cv::Size frame);

// Outlines every zone on the picture with its name: include zones in cyan, exclude zones in
// grey with a cross through them.
void draw_zones(cv::Mat& bgr, const std::vector<Zone>& zones);

}  // namespace maskwatch
