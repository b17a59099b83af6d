// Named camera conditions for `eval --conditions`: how much of the accuracy measured on clean
// crops survives the dark, noisy, compressed, soft or colour-cast pictures real webcams give.
//
// Each condition is a pure function of (8-bit BGR crop, per-image seed): the same image and
// seed always give the same pixels, so a report can be reproduced and two models compared on
// exactly the same renders. Unlike the training augmentation (data/augment.h), nothing is
// drawn at random except the noise pattern: each condition is one fixed, named strength.
//
// Light is changed where cameras change it, in linear light (sRGB decoded, scaled, encoded
// again), so -1 EV halves the photons rather than the 8-bit values.
#pragma once
#include <cstdint>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "media/linear_light.h"

namespace maskwatch {

struct Condition {
  std::string name;         // short and stable: table rows, JSON keys, test names
  std::string description;  // one line for --help and the README
  cv::Mat (*render)(const cv::Mat& bgr, uint64_t seed);
};

// Every condition, `clean` first; the report, the contact sheet and the tests use this list.
const std::vector<Condition>& camera_conditions();
// The condition called `name`; throws Error listing the names when there is none.
const Condition& find_condition(const std::string& name);

// Building blocks (the conditions are compositions of these; exposed for tests).
//
// Linear light: srgb8_to_linear, linear_to_srgb8, add_linear_noise (media/linear_light.h).
// Re-encodes as JPEG at `quality` (1-100) and decodes again (libjpeg, 4:2:0).
cv::Mat jpeg_round_trip(const cv::Mat& bgr, int quality);
// Downscales so the shorter side is `side` px (area averaging) and back up (bilinear); an
// image already that small is returned unchanged.
cv::Mat low_resolution(const cv::Mat& bgr, int side);
// Gaussian blur of `sigma_at_160` px at a 160 px crop, scaled with the crop's shorter side.
cv::Mat defocus(const cv::Mat& bgr, double sigma_at_160);

}  // namespace maskwatch
