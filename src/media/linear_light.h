// Linear light and back: camera effects (exposure, sensor noise) happen before the camera's
// sRGB curve, so the evaluation's camera conditions (eval/conditions.h) and the training
// augmentation that matches them (data/augment.h) work on linear values.
#pragma once
#include <cstdint>
#include <opencv2/core.hpp>

namespace maskwatch {

// 8-bit BGR -> linear light, CV_32FC3 in [0, 1] (the sRGB transfer curve, per channel).
cv::Mat srgb8_to_linear(const cv::Mat& bgr);
// Linear light (any values; clipped to [0, 1]) -> 8-bit sRGB, rounded to the nearest level.
cv::Mat linear_to_srgb8(const cv::Mat& linear);
// Adds Gaussian noise of `sigma` (fraction of full scale) to a linear CV_32FC3 image, one
// independent draw per pixel and channel from `seed`.
void add_linear_noise(cv::Mat& linear, double sigma, uint64_t seed);

}  // namespace maskwatch
