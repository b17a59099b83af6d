// The mask classifier: MobileNetV2 backbone + the original project's head
// (global average pool -> Dense 128 + ReLU -> Dropout 0.5 -> Dense N).
#pragma once
#include <torch/torch.h>

#include "nn/mobilenet_v2.h"

namespace maskwatch {

struct MaskNetOptions {
  int num_classes = 2;
  int hidden = 128;
  double dropout = 0.5;
};

struct MaskNetImpl : torch::nn::Module {
  explicit MaskNetImpl(const MaskNetOptions& options = {});

  torch::Tensor forward(torch::Tensor images);  // logits [N, num_classes]
  // Head only, from pooled backbone features [N, 1280].
  torch::Tensor head(torch::Tensor pooled);
  static torch::Tensor pool(const torch::Tensor& fmap) { return fmap.mean({2, 3}); }

  // Training mode for the head only: the backbone's BatchNorm always runs in inference
  // mode (as the original called its base with training=False), frozen or not.
  void set_training(bool on);
  // Backbone stages before `first_trainable` get no gradients (kNumStages = all frozen).
  void freeze_backbone_before(int first_trainable);
  // Parameters that currently require gradients.
  std::vector<torch::Tensor> trainable_parameters();

  MaskNetOptions options;
  MobileNetV2 backbone{nullptr};
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  torch::nn::Dropout dropout{nullptr};
};
TORCH_MODULE(MaskNet);

}  // namespace maskwatch
