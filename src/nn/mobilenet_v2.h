// MobileNetV2 1.0 laid out like Keras' `MobileNetV2` (and the official TFLite files):
// stem 3x3/2 conv to 32 channels, 17 inverted-residual blocks, 1x1 conv to 1280, ReLU6,
// BatchNorm after every conv (so imported weights stay fine-tunable).
//
// The network is a sequence of 19 "stages" that the trainer and exporter address by index:
//   stage 0        stem conv
//   stages 1..17   inverted-residual blocks 0..16 (Keras: expanded_conv, block_1..block_16)
//   stage 18       final 1x1 conv to 1280 (Keras: Conv_1)
// Stride-2 convs use TensorFlow "SAME" padding (for even sizes: 0 before, 1 after); with
// symmetric padding the imported weights give wrong answers.
#pragma once
#include <torch/torch.h>

#include "model/mobilenet_v2_spec.h"

#include <string>
#include <vector>

namespace maskwatch {

// Conv (no bias) -> BatchNorm -> optional ReLU6.
struct ConvBNImpl : torch::nn::Module {
  ConvBNImpl(int in, int out, int kernel, int stride, int groups, bool relu6);
  torch::Tensor forward(torch::Tensor x);
  // Sets the BN layer to an exact identity plus `bias` (gamma 1, mean 0, var 1-eps,
  // beta = bias): the form in which BN-folded imported weights remain trainable.
  void set_folded(const torch::Tensor& weight, const torch::Tensor& bias);
  // Conv weight and bias with BN folded in (what the ONNX exporter writes).
  std::pair<torch::Tensor, torch::Tensor> folded() const;

  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
  int in_channels, out_channels, kernel, stride, groups;
  bool relu6;
};
TORCH_MODULE(ConvBN);

struct InvertedResidualImpl : torch::nn::Module {
  explicit InvertedResidualImpl(const BlockSpec& spec);
  torch::Tensor forward(torch::Tensor x);
  BlockSpec spec;
  bool residual;
  ConvBN expand{nullptr};  // null when expansion == 1
  ConvBN depthwise{nullptr};
  ConvBN project{nullptr};
};
TORCH_MODULE(InvertedResidual);

struct MobileNetV2Impl : torch::nn::Module {
  // num_imagenet_classes > 0 adds the ImageNet top (pool + linear), used only by the
  // sanity check; the mask classifier builds the backbone without it.
  explicit MobileNetV2Impl(int num_imagenet_classes = 0);

  // Runs stages [first, last] (inclusive) on x.
  torch::Tensor forward_stages(torch::Tensor x, int first, int last);
  // All stages: [N, 1280, h, w].
  torch::Tensor features(torch::Tensor x) { return forward_stages(x, 0, kNumStages - 1); }
  // features -> global average pool -> ImageNet logits (requires the top).
  torch::Tensor forward(torch::Tensor x);

  // The module of stage s (stem, a block or the final conv).
  torch::nn::Module& stage_module(int s);

  // Every ConvBN in execution order (stem, per block expand/depthwise/project, final),
  // with a Keras-like name, for importers and exporters that walk the convs in order.
  std::vector<std::pair<std::string, ConvBN>> convs_in_order();

  ConvBN stem{nullptr};
  std::vector<InvertedResidual> blocks;
  ConvBN last_conv{nullptr};
  torch::nn::Linear imagenet_top{nullptr};
};
TORCH_MODULE(MobileNetV2);

}  // namespace maskwatch
