#include "nn/blob_tensor.h"

namespace maskwatch {

torch::Tensor blob_to_tensor(const cv::Mat& blob) {
  std::vector<int64_t> shape(blob.size.p, blob.size.p + blob.dims);
  return torch::from_blob(const_cast<float*>(blob.ptr<float>()), shape, torch::kFloat32).clone();
}

}  // namespace maskwatch
