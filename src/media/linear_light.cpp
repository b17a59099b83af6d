#include "media/linear_light.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "util/error.h"

namespace maskwatch {
namespace {

// IEC 61966-2-1: the curve every 8-bit camera and file here is assumed to be in.
double srgb_decode(double c) { return c <= 0.04045 ? c / 12.92 : std::pow((c + 0.055) / 1.055, 2.4); }

const std::array<float, 256>& decode_table() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int v = 0; v < 256; ++v) t[static_cast<size_t>(v)] = static_cast<float>(srgb_decode(v / 255.0));
    return t;
  }();
  return table;
}

// Linear values half-way between consecutive 8-bit sRGB levels: a linear value's level is the
// number of these at or below it, i.e. exact rounding of the encoded value without a pow().
const std::array<float, 255>& encode_thresholds() {
  static const std::array<float, 255> table = [] {
    std::array<float, 255> t{};
    for (int k = 0; k < 255; ++k) t[static_cast<size_t>(k)] = static_cast<float>(srgb_decode((k + 0.5) / 255.0));
    return t;
  }();
  return table;
}

}  // namespace

cv::Mat srgb8_to_linear(const cv::Mat& bgr) {
  if (bgr.empty() || bgr.type() != CV_8UC3) throw Error("srgb8_to_linear needs an 8-bit 3-channel image");
  const auto& table = decode_table();
  cv::Mat out(bgr.size(), CV_32FC3);
  for (int y = 0; y < bgr.rows; ++y) {
    const uint8_t* in = bgr.ptr<uint8_t>(y);
    float* o = out.ptr<float>(y);
    for (int i = 0; i < bgr.cols * 3; ++i) o[i] = table[in[i]];
  }
  return out;
}

cv::Mat linear_to_srgb8(const cv::Mat& linear) {
  if (linear.empty() || linear.type() != CV_32FC3) throw Error("linear_to_srgb8 needs a 3-channel float image");
  const auto& t = encode_thresholds();
  cv::Mat out(linear.size(), CV_8UC3);
  for (int y = 0; y < linear.rows; ++y) {
    const float* in = linear.ptr<float>(y);
    uint8_t* o = out.ptr<uint8_t>(y);
    for (int i = 0; i < linear.cols * 3; ++i) {
      const float v = in[i];
      o[i] = !(v > 0) ? 0 : static_cast<uint8_t>(std::upper_bound(t.begin(), t.end(), v) - t.begin());
    }
  }
  return out;
}

void add_linear_noise(cv::Mat& linear, double sigma, uint64_t seed) {
  if (linear.type() != CV_32FC3) throw Error("add_linear_noise needs a 3-channel float image");
  cv::Mat noise(linear.size(), CV_32FC3);
  cv::RNG rng(seed);  // OpenCV's own generator and Gaussian: the same numbers on every platform
  rng.fill(noise, cv::RNG::NORMAL, 0, sigma);
  linear += noise;
}

}  // namespace maskwatch
