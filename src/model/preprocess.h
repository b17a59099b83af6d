// The one place that turns images into network input, so training, LibTorch inference
// and OpenCV DNN inference can never disagree: RGB, NCHW float32, value/127.5 - 1
// (i.e. [-1, 1], what the ImageNet MobileNetV2 files were trained with). LibTorch tensors:
// blob_tensor.h.
#pragma once
#include <opencv2/core.hpp>

#include <vector>

namespace maskwatch {

// BGR 8-bit images (any size) -> [N, 3, size, size] float blob. Images that are not
// already size x size are resized (INTER_AREA when shrinking, bilinear when growing).
cv::Mat make_blob(const std::vector<cv::Mat>& bgr_images, int size);

// Resizes to size x size with the interpolation make_blob uses.
cv::Mat resize_square(const cv::Mat& bgr, int size);

// Largest centred square of the image (the ImageNet evaluation crop).
cv::Mat center_square(const cv::Mat& image);

}  // namespace maskwatch
