// Network input as LibTorch tensors, made by the same preprocessing as OpenCV DNN gets
// (preprocess.h), so both engines always see identical numbers.
#pragma once
#include <torch/torch.h>

#include <opencv2/core.hpp>
#include <vector>

#include "model/preprocess.h"

namespace maskwatch {

// An NCHW float blob as a tensor (a copy that owns its memory).
torch::Tensor blob_to_tensor(const cv::Mat& blob);
inline torch::Tensor images_to_tensor(const std::vector<cv::Mat>& bgr_images, int size) {
  return blob_to_tensor(make_blob(bgr_images, size));
}

}  // namespace maskwatch
