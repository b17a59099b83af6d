// Training augmentation, drawn from a per-image seed so the same (seed, view, image) always
// gives the same picture whatever thread makes it - needed for --resume to reach the same
// weights.
//  - Geometry: one affine warp (rotation, zoom, shift, shear, horizontal flip) with border
//    replicate, as Keras' ImageDataGenerator(fill_mode="nearest") did for the original
//    project. On a run-time face crop, zoom and shift are the jitter of margin and centre.
//  - Camera effects, applied to both classes alike so neither sharpness nor colour can tell
//    a class or a source: a dim room on a webcam (less light and sensor noise, in linear
//    light as a sensor sees them), brightness / contrast / saturation, grayscale (IR
//    cameras), downscale-then-upscale (small distant faces), blur, sensor noise, JPEG.
#pragma once
#include <cstdint>
#include <opencv2/core.hpp>

#include "util/seed.h"

namespace maskwatch {

// Camera effects; each probability may be 0 to turn an effect off.
struct PhotoOptions {
  double brightness = 0.4;   // pixel values x U[1-b, 1+b]
  double contrast = 0.4;     // deviation from the mean x U[1-c, 1+c]
  double saturation = 0.4;   // colour deviation from grey x U[1-s, 1+s]
  double gray_p = 0.1;       // to grayscale
  double downscale_p = 0.2;  // shrink the shorter side to U[16, size/3] px, then back up
  double blur_p = 0.2;       // Gaussian blur, sigma U[0.5, 2] px at 224 (scaled with the size)
  double noise_p = 0.15;     // Gaussian noise, sigma U[2, 10] grey levels
  double jpeg_p = 0.25;      // JPEG re-encode at quality U[15, 60]
  // A dim room: U[-2.5, -0.5] EV in linear light, then sensor noise sigma U[0.01, 0.05] of
  // full scale in linear light (the `eval --conditions` dim webcam is -2 EV, 0.04, JPEG 40).
  // Off by default: at 0.15 it turned the dim-webcam errors towards calling bare faces masked,
  // and with the smoothing of training crops and chin masks 8x it did so again on a second
  // split (README "Robustness under camera conditions").
  double dim_p = 0;
  bool enabled = true;
};

struct PhotoParams {
  double brightness = 1, contrast = 1, saturation = 1;
  bool gray = false;
  double downscale = -1;  // < 0 none; else the side is 16 + downscale x (size/3 - 16) px
  double blur_sigma = 0;  // pixels at 224
  double noise_sigma = 0;
  uint64_t noise_seed = 0;
  int jpeg_quality = 0;  // 0 = none
  double dim_ev = 0;     // 0 = no dim room; else the exposure change in EV (negative)
  double dim_noise = 0;  // linear-light noise sigma with dim_ev
  uint64_t dim_seed = 0;
};

struct AugmentOptions {
  double rotation_deg = 20;  // uniform in [-r, r]
  double zoom = 0.15;        // x and y scale each uniform in [1 - z, 1 + z] (Keras zoom_range)
  double shift = 0.2;        // fraction of width / height, uniform in [-s, s]
  double shear_deg = 0.15;   // Keras shear_range is in degrees: the original's 0.15 is tiny
  bool flip = true;          // horizontal flip with probability 0.5
  bool enabled = true;       // false: no augmentation at all (geometry or camera effects)
  PhotoOptions photo;
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

// Deterministic draw of the camera effects for one image (from their own stream, so turning
// them on or off does not change the geometry drawn from the same seed).
PhotoParams draw_photo(const PhotoOptions& o, uint64_t seed);
// Applies camera effects to an 8-bit BGR image in place.
void apply_photo(cv::Mat& bgr, const PhotoParams& p);

// Geometry then camera effects, both drawn from `seed`: what the trainer feeds the network.
cv::Mat augment_training_image(const cv::Mat& src, const AugmentOptions& o, uint64_t seed, int out_size);

}  // namespace maskwatch
