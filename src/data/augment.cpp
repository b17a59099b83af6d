#include "data/augment.h"

#include <cmath>
#include <opencv2/imgproc.hpp>
#include <vector>

#include "media/image_codec.h"
#include "media/linear_light.h"
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

PhotoParams draw_photo(const PhotoOptions& o, uint64_t seed) {
  PhotoParams p;
  if (!o.enabled) return p;
  SeededStream s{mix_seed(seed, 0x70686f746fULL)};  // "photo": a stream apart from the geometry's
  p.brightness = s.uniform(1 - o.brightness, 1 + o.brightness);
  p.contrast = s.uniform(1 - o.contrast, 1 + o.contrast);
  p.saturation = s.uniform(1 - o.saturation, 1 + o.saturation);
  p.gray = s.chance(o.gray_p);
  const double down = s.uniform(0, 1), blur = s.uniform(0, 1), noise = s.uniform(0, 1), jpeg = s.uniform(0, 1);
  const double down_frac = s.uniform(0, 1), sigma = s.uniform(0.5, 2.0), noise_sigma = s.uniform(2, 10);
  const double quality = s.uniform(15, 60);
  if (down < o.downscale_p) p.downscale = down_frac;
  if (blur < o.blur_p) p.blur_sigma = sigma;
  if (noise < o.noise_p) {
    p.noise_sigma = noise_sigma;
    p.noise_seed = mix_seed(seed, 0x6e6f697365ULL);
  }
  if (jpeg < o.jpeg_p) p.jpeg_quality = static_cast<int>(quality);
  // Drawn after the others, so that adding it left every earlier draw as it was.
  const double dim = s.uniform(0, 1), ev = s.uniform(-2.5, -0.5), dim_noise = s.uniform(0.01, 0.05);
  if (dim < o.dim_p) {
    p.dim_ev = ev;
    p.dim_noise = dim_noise;
    p.dim_seed = mix_seed(seed, 0x64696dULL);
  }
  return p;
}

void apply_photo(cv::Mat& img, const PhotoParams& p) {
  if (img.empty()) return;
  const int size = std::min(img.cols, img.rows);
  if (p.dim_ev != 0) {  // the light the sensor gets, then its noise: before anything the camera does
    cv::Mat linear = srgb8_to_linear(img) * std::exp2(p.dim_ev);
    add_linear_noise(linear, p.dim_noise, p.dim_seed);
    img = linear_to_srgb8(linear);
  }
  if (p.brightness != 1 || p.contrast != 1 || p.saturation != 1 || p.gray) {
    cv::Mat f;
    img.convertTo(f, CV_32F);
    cv::Mat g;
    cv::cvtColor(f, g, cv::COLOR_BGR2GRAY);
    cv::cvtColor(g, g, cv::COLOR_GRAY2BGR);
    if (p.gray)
      f = g;
    else if (p.saturation != 1)
      f = g + (f - g) * p.saturation;
    const cv::Scalar mean = cv::mean(g);
    f = (f - mean) * p.contrast + mean;
    f *= p.brightness;
    f.convertTo(img, CV_8U);  // saturating
  }
  if (p.downscale >= 0) {
    const int side = std::max(8, static_cast<int>(16 + p.downscale * std::max(0, size / 3 - 16)));
    if (side < size) {
      cv::Mat small;
      cv::resize(img, small, cv::Size(side, side), 0, 0, cv::INTER_AREA);
      cv::resize(small, img, cv::Size(img.cols, img.rows), 0, 0, cv::INTER_LINEAR);
    }
  }
  if (p.blur_sigma > 0) cv::GaussianBlur(img, img, cv::Size(0, 0), p.blur_sigma * size / 224.0);
  if (p.noise_sigma > 0) {
    cv::Mat noise(img.size(), CV_16SC3);
    cv::RNG rng(p.noise_seed);
    rng.fill(noise, cv::RNG::NORMAL, 0, p.noise_sigma);
    cv::Mat sum;
    img.convertTo(sum, CV_16SC3);
    sum += noise;
    sum.convertTo(img, CV_8U);
  }
  if (p.jpeg_quality > 0) {
    const auto buf = encode_jpeg(img, p.jpeg_quality);
    img = decode_jpeg(buf.data(), buf.size());
  }
}

cv::Mat augment_training_image(const cv::Mat& src, const AugmentOptions& o, uint64_t seed, int out_size) {
  cv::Mat out = augment_image(src, draw_affine(o, seed), out_size);
  if (o.enabled) apply_photo(out, draw_photo(o.photo, seed));
  return out;
}

}  // namespace maskwatch
