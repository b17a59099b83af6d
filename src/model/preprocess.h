// The one place that turns images into network input, so training, LibTorch inference
// and OpenCV DNN inference can never disagree: RGB, NCHW float32, value/127.5 - 1
// (i.e. [-1, 1], what the ImageNet MobileNetV2 files were trained with).
#pragma once
#include <opencv2/core.hpp>
#include <torch/torch.h>

#include <vector>

namespace maskwatch {

// BGR 8-bit images (any size) -> [N, 3, size, size] float blob. Images that are not
// already size x size are resized (INTER_AREA when shrinking, bilinear when growing).
cv::Mat make_blob(const std::vector<cv::Mat>& bgr_images, int size);

// The same as a LibTorch tensor (a copy that owns its memory).
torch::Tensor blob_to_tensor(const cv::Mat& blob);
inline torch::Tensor images_to_tensor(const std::vector<cv::Mat>& bgr_images, int size) {
  return blob_to_tensor(make_blob(bgr_images, size));
}

// Resizes to size x size with the interpolation make_blob uses.
cv::Mat resize_square(const cv::Mat& bgr, int size);

// Largest centred square of the image (the ImageNet evaluation crop).
cv::Mat center_square(const cv::Mat& image);

}  // namespace maskwatch
