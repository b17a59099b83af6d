// Training augmentation: one affine warp per image (rotation, zoom, shift, shear, horizontal
// flip) with border replicate, as Keras' ImageDataGenerator(fill_mode="nearest") did for the
// original project. Parameters are drawn from a per-image seed, so the same (seed, epoch,
// image) always gives the same picture whatever thread makes it - needed for --resume to
// reach the same weights.
#pragma once
#include <cstdint>
#include <opencv2/core.hpp>

#include "util/seed.h"

namespace maskwatch {

struct AugmentOptions {
  double rotation_deg = 20;  // uniform in [-r, r]
  double zoom = 0.15;        // x and y scale each uniform in [1 - z, 1 + z] (Keras zoom_range)
  double shift = 0.2;        // fraction of width / height, uniform in [-s, s]
  double shear_deg = 0.15;   // Keras shear_range is in degrees: the original's 0.15 is tiny
  bool flip = true;          // horizontal flip with probability 0.5
  bool enabled = true;
};

struct AffineParams {
  double rotation_deg = 0, zoom_x = 1, zoom_y = 1, shift_x = 0, shift_y = 0, shear_deg = 0;
  bool flip = false;
};

// Deterministic parameter draw for one image.
AffineParams draw_affine(const AugmentOptions& o, uint64_t seed);

// 2x3 matrix mapping source pixels to output pixels for a w x h image (about its centre).
cv::Matx23d affine_matrix(const AffineParams& p, int width, int height);

// Warps `src` (any size) to an out_size x out_size image: the source is first scaled to the
// output size (as Keras resized to target_size before augmenting), then transformed.
cv::Mat augment_image(const cv::Mat& src, const AffineParams& p, int out_size);

}  // namespace maskwatch
