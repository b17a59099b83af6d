#include "eval/conditions.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <opencv2/imgproc.hpp>

#include "media/image_codec.h"
#include "media/linear_light.h"
#include "util/error.h"

namespace maskwatch {
namespace {

const cv::Mat& checked(const cv::Mat& bgr) {
  if (bgr.empty() || bgr.type() != CV_8UC3)
    throw Error(fmt::format("camera conditions need an 8-bit 3-channel (BGR) image, not {}",
                            bgr.empty() ? std::string("an empty one") : cv::typeToString(bgr.type())));
  return bgr;
}

cv::Mat exposed(const cv::Mat& bgr, double ev) { return linear_to_srgb8(srgb8_to_linear(bgr) * std::exp2(ev)); }

cv::Mat noisy(const cv::Mat& bgr, uint64_t seed) {
  cv::Mat linear = srgb8_to_linear(bgr);
  add_linear_noise(linear, 0.04, seed);
  return linear_to_srgb8(linear);
}

cv::Mat with_gains(const cv::Mat& bgr, double b, double g, double r) {
  cv::Mat linear = srgb8_to_linear(bgr);
  cv::multiply(linear, cv::Scalar(b, g, r), linear);
  return linear_to_srgb8(linear);
}

// A bright window behind the subject: the camera meters for the scene, so the face (a centre
// ellipse of ~60 % of the crop) is 2 stops under and the background 1 stop over, clipped.
// The edge is feathered over +-10 % of the ellipse radius, as a real silhouette is not a cut.
cv::Mat backlit(const cv::Mat& bgr) {
  cv::Mat linear = srgb8_to_linear(bgr);
  // Semi-axes k x half the width and height: area pi k^2 w h / 4 = 0.6 w h.
  const double k = std::sqrt(0.6 * 4 / CV_PI);
  const double cx = (linear.cols - 1) * 0.5, cy = (linear.rows - 1) * 0.5;
  const double ax = k * linear.cols * 0.5, ay = k * linear.rows * 0.5;
  for (int y = 0; y < linear.rows; ++y) {
    auto* row = linear.ptr<cv::Vec3f>(y);
    for (int x = 0; x < linear.cols; ++x) {
      const double r = std::hypot((x - cx) / ax, (y - cy) / ay);
      const double t = std::clamp((r - 0.9) / 0.2, 0.0, 1.0);
      const double face = 1 - t * t * (3 - 2 * t);  // smoothstep: 1 inside, 0 outside
      row[x] *= static_cast<float>(std::exp2(-2 * face + 1 * (1 - face)));
    }
  }
  return linear_to_srgb8(linear);
}

// The conditions (one named strength each). Every function checks its input once.
cv::Mat clean(const cv::Mat& bgr, uint64_t) { return checked(bgr).clone(); }
cv::Mat ev_minus1(const cv::Mat& bgr, uint64_t) { return exposed(checked(bgr), -1); }
cv::Mat ev_minus2(const cv::Mat& bgr, uint64_t) { return exposed(checked(bgr), -2); }
cv::Mat ev_minus3(const cv::Mat& bgr, uint64_t) { return exposed(checked(bgr), -3); }
cv::Mat noise(const cv::Mat& bgr, uint64_t seed) { return noisy(checked(bgr), seed); }
cv::Mat jpeg40(const cv::Mat& bgr, uint64_t) { return jpeg_round_trip(checked(bgr), 40); }
cv::Mat jpeg20(const cv::Mat& bgr, uint64_t) { return jpeg_round_trip(checked(bgr), 20); }
cv::Mat blur1(const cv::Mat& bgr, uint64_t) { return defocus(checked(bgr), 1); }
cv::Mat blur2(const cv::Mat& bgr, uint64_t) { return defocus(checked(bgr), 2); }
cv::Mat low48(const cv::Mat& bgr, uint64_t) { return low_resolution(checked(bgr), 48); }
cv::Mat low32(const cv::Mat& bgr, uint64_t) { return low_resolution(checked(bgr), 32); }
cv::Mat low24(const cv::Mat& bgr, uint64_t) { return low_resolution(checked(bgr), 24); }
cv::Mat backlight(const cv::Mat& bgr, uint64_t) { return backlit(checked(bgr)); }
cv::Mat warm(const cv::Mat& bgr, uint64_t) { return with_gains(checked(bgr), 0.8, 1.0, 1.2); }
cv::Mat cool(const cv::Mat& bgr, uint64_t) { return with_gains(checked(bgr), 1.2, 1.0, 0.85); }
cv::Mat green(const cv::Mat& bgr, uint64_t) { return with_gains(checked(bgr), 0.9, 1.15, 0.9); }
cv::Mat dim_webcam(const cv::Mat& bgr, uint64_t seed) {
  cv::Mat linear = srgb8_to_linear(checked(bgr)) * 0.25;  // -2 EV
  add_linear_noise(linear, 0.04, seed);                   // the same draw as `noise` for this seed
  return jpeg_round_trip(linear_to_srgb8(linear), 40);
}

}  // namespace

const std::vector<Condition>& camera_conditions() {
  static const std::vector<Condition> list = {
      // The reference every other row is compared with.
      {"clean", "the crop as decoded", clean},
      // Dim rooms and evening light: the most common way a webcam picture degrades.
      {"exposure -1 EV", "half the light (linear light x 0.5)", ev_minus1},
      {"exposure -2 EV", "a quarter of the light (linear light x 0.25)", ev_minus2},
      {"exposure -3 EV", "an eighth of the light (linear light x 0.125)", ev_minus3},
      // Small sensors at high gain: grain that can hide a mask's edge or fake texture.
      {"noise", "Gaussian sensor noise, sigma 0.04 of full scale in linear light", noise},
      // Streams and snapshots are compressed; blocking smears the mouth region first.
      {"jpeg 40", "JPEG re-encoded at quality 40", jpeg40},
      {"jpeg 20", "JPEG re-encoded at quality 20", jpeg20},
      // Fixed-focus lenses and motion: faces out of the focal plane are soft.
      {"blur 1", "Gaussian blur, sigma 1 px at a 160 px crop", blur1},
      {"blur 2", "Gaussian blur, sigma 2 px at a 160 px crop", blur2},
      // Faces far from the camera: a few dozen pixels across, upscaled to the input size.
      {"low-res 48", "shorter side down to 48 px (area) and back up (bilinear)", low48},
      {"low-res 32", "shorter side down to 32 px (area) and back up (bilinear)", low32},
      {"low-res 24", "shorter side down to 24 px (area) and back up (bilinear)", low24},
      // A window behind the subject: dark face on a blown-out background.
      {"backlight", "face ellipse (~60 % of the crop) at -2 EV, the rest at +1 EV, clipped", backlight},
      // Cheap webcams' white balance: the whole picture tinted, as masks are often blue or white.
      {"cast warm", "linear gains B 0.8, G 1.0, R 1.2 (tungsten light, no white balance)", warm},
      {"cast cool", "linear gains B 1.2, G 1.0, R 0.85 (daylight on a tungsten setting)", cool},
      {"cast green", "linear gains B 0.9, G 1.15, R 0.9 (fluorescent light)", green},
      // What a cheap webcam in a dim room sends: all three at once, in camera order.
      {"dim webcam", "-2 EV, then noise sigma 0.04, then JPEG quality 40", dim_webcam},
  };
  return list;
}

const Condition& find_condition(const std::string& name) {
  std::string names;
  for (const auto& c : camera_conditions()) {
    if (c.name == name) return c;
    names += (names.empty() ? "" : ", ") + c.name;
  }
  throw Error(fmt::format("no camera condition '{}' (there are: {})", name, names));
}

cv::Mat jpeg_round_trip(const cv::Mat& bgr, int quality) {
  const auto bytes = encode_jpeg(checked(bgr), quality);
  std::string why;
  cv::Mat out = decode_jpeg(bytes.data(), bytes.size(), &why);
  if (out.empty()) throw Error("JPEG round trip failed: " + why);
  return out;
}

cv::Mat low_resolution(const cv::Mat& bgr, int side) {
  checked(bgr);
  const int shorter = std::min(bgr.cols, bgr.rows);
  if (side <= 0) throw Error(fmt::format("low resolution side must be positive, not {}", side));
  if (side >= shorter) return bgr.clone();
  const double f = static_cast<double>(side) / shorter;
  const cv::Size small_size(bgr.cols == shorter ? side : std::max(1, static_cast<int>(std::lround(bgr.cols * f))),
                            bgr.rows == shorter ? side : std::max(1, static_cast<int>(std::lround(bgr.rows * f))));
  cv::Mat small, out;
  cv::resize(bgr, small, small_size, 0, 0, cv::INTER_AREA);
  cv::resize(small, out, bgr.size(), 0, 0, cv::INTER_LINEAR);
  return out;
}

cv::Mat defocus(const cv::Mat& bgr, double sigma_at_160) {
  checked(bgr);
  // On the 8-bit values, as the training augmentation blurs: at these radii the difference
  // from blurring in linear light is a slight darkening of bright edges, not the point here.
  cv::Mat out;
  cv::GaussianBlur(bgr, out, cv::Size(0, 0), sigma_at_160 * std::min(bgr.cols, bgr.rows) / 160.0);
  return out;
}

}  // namespace maskwatch
