#include "data/augment.h"

#include <cmath>
#include <opencv2/imgproc.hpp>

#include "model/preprocess.h"

namespace maskwatch {

AffineParams draw_affine(const AugmentOptions& o, uint64_t seed) {
  AffineParams p;
  if (!o.enabled) return p;
  SeededStream s{seed};
  p.rotation_deg = s.uniform(-o.rotation_deg, o.rotation_deg);
  p.zoom_x = s.uniform(1 - o.zoom, 1 + o.zoom);
  p.zoom_y = s.uniform(1 - o.zoom, 1 + o.zoom);
  p.shift_x = s.uniform(-o.shift, o.shift);
  p.shift_y = s.uniform(-o.shift, o.shift);
  p.shear_deg = s.uniform(-o.shear_deg, o.shear_deg);
  p.flip = o.flip && s.uniform(0, 1) < 0.5;
  return p;
}

cv::Matx23d affine_matrix(const AffineParams& p, int width, int height) {
  const double cx = (width - 1) * 0.5, cy = (height - 1) * 0.5;
  const double r = p.rotation_deg * CV_PI / 180.0, sh = p.shear_deg * CV_PI / 180.0;
  // Output = T(centre + shift) * R * Shear * Zoom * Flip * T(-centre), applied to source points.
  const cv::Matx33d to_origin(1, 0, -cx, 0, 1, -cy, 0, 0, 1);
  const cv::Matx33d flip(p.flip ? -1 : 1, 0, 0, 0, 1, 0, 0, 0, 1);
  const cv::Matx33d zoom(p.zoom_x, 0, 0, 0, p.zoom_y, 0, 0, 0, 1);
  const cv::Matx33d shear(1, -std::sin(sh), 0, 0, std::cos(sh), 0, 0, 0, 1);
  const cv::Matx33d rot(std::cos(r), -std::sin(r), 0, std::sin(r), std::cos(r), 0, 0, 0, 1);
  const cv::Matx33d back(1, 0, cx + p.shift_x * width, 0, 1, cy + p.shift_y * height, 0, 0, 1);
  const cv::Matx33d m = back * rot * shear * zoom * flip * to_origin;
  return cv::Matx23d(m(0, 0), m(0, 1), m(0, 2), m(1, 0), m(1, 1), m(1, 2));
}

cv::Mat augment_image(const cv::Mat& src, const AffineParams& p, int out_size) {
  const cv::Mat sized = resize_square(src, out_size);
  cv::Mat out;
  cv::warpAffine(sized, out, cv::Mat(affine_matrix(p, out_size, out_size)), cv::Size(out_size, out_size),
                 cv::INTER_LINEAR, cv::BORDER_REPLICATE);
  return out;
}

}  // namespace maskwatch
