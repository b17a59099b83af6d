#include "train/features.h"

#include "nn/blob_tensor.h"
#include "util/error.h"

namespace maskwatch {

FrozenBackbone::FrozenBackbone(MobileNetV2 backbone, int split_stage) : net_(std::move(backbone)), split_(split_stage) {
  if (split_stage < 1 || split_stage > kNumStages) throw Error("split stage out of range");
}

torch::Tensor FrozenBackbone::prefix(const torch::Tensor& images) const {
  torch::NoGradGuard guard;  // not InferenceMode: its tensors could not feed the autograd tail later
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i < images.size(0); i += chunk_) {
    auto x =
        images.slice(0, i, std::min<int64_t>(i + chunk_, images.size(0))).contiguous(torch::MemoryFormat::ChannelsLast);
    parts.push_back(net_->forward_stages(x, 0, split_ - 1).contiguous());
  }
  return torch::cat(parts, 0);
}

torch::Tensor FrozenBackbone::tail_pooled(const torch::Tensor& p) const {
  torch::NoGradGuard guard;  // not InferenceMode: its tensors could not feed the autograd tail later
  if (split_ == kNumStages) return p.mean({2, 3});
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i < p.size(0); i += 16) {
    auto x = p.slice(0, i, std::min(i + 16, p.size(0))).contiguous(torch::MemoryFormat::ChannelsLast);
    parts.push_back(net_->forward_stages(x, split_, kNumStages - 1).mean({2, 3}));
  }
  return torch::cat(parts, 0);
}

torch::Tensor FrozenBackbone::prefix_of_images(const std::vector<cv::Mat>& bgr, int size) const {
  return prefix(images_to_tensor(bgr, size));
}

}  // namespace maskwatch
