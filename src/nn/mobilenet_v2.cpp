#include "nn/mobilenet_v2.h"

#include <fmt/format.h>

#include "util/error.h"

namespace maskwatch {

namespace F = torch::nn::functional;

ConvBNImpl::ConvBNImpl(int in, int out, int kernel_, int stride_, int groups_, bool relu6_)
    : in_channels(in), out_channels(out), kernel(kernel_), stride(stride_), groups(groups_), relu6(relu6_) {
  conv = register_module(
      "conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel).stride(stride).groups(groups).bias(false)));
  bn =
      register_module("bn", torch::nn::BatchNorm2d(torch::nn::BatchNormOptions(out).eps(kBatchNormEps).momentum(0.01)));
}

torch::Tensor ConvBNImpl::forward(torch::Tensor x) {
  if (kernel > 1) {
    const auto [top, bottom] = same_padding(static_cast<int>(x.size(2)), kernel, stride);
    const auto [left, right] = same_padding(static_cast<int>(x.size(3)), kernel, stride);
    x = F::pad(x, F::PadFuncOptions({left, right, top, bottom}));
  }
  x = bn->forward(conv->forward(x));
  return relu6 ? torch::clamp(x, 0.0, 6.0) : x;
}

void ConvBNImpl::set_folded(const torch::Tensor& weight, const torch::Tensor& bias) {
  torch::NoGradGuard no_grad;
  if (weight.sizes() != conv->weight.sizes())
    throw Error(fmt::format("weight shape {} does not fit conv {}", fmt::join(weight.sizes(), "x"),
                            fmt::join(conv->weight.sizes(), "x")));
  conv->weight.copy_(weight);
  bn->weight.fill_(1.0);
  bn->bias.copy_(bias);
  bn->running_mean.zero_();
  bn->running_var.fill_(1.0 - kBatchNormEps);
}

std::pair<torch::Tensor, torch::Tensor> ConvBNImpl::folded() const {
  torch::NoGradGuard no_grad;
  const auto scale = bn->weight / torch::sqrt(bn->running_var + bn->options.eps());
  auto w = conv->weight * scale.view({-1, 1, 1, 1});
  auto b = bn->bias - bn->running_mean * scale;
  return {w.contiguous(), b.contiguous()};
}

InvertedResidualImpl::InvertedResidualImpl(const BlockSpec& s)
    : spec(s), residual(s.stride == 1 && s.in_channels == s.out_channels) {
  const int hidden = s.in_channels * s.expansion;
  if (s.expansion != 1) expand = register_module("expand", ConvBN(s.in_channels, hidden, 1, 1, 1, true));
  depthwise = register_module("depthwise", ConvBN(hidden, hidden, 3, s.stride, hidden, true));
  project = register_module("project", ConvBN(hidden, s.out_channels, 1, 1, 1, false));
}

torch::Tensor InvertedResidualImpl::forward(torch::Tensor x) {
  auto y = expand ? expand->forward(x) : x;
  y = project->forward(depthwise->forward(y));
  return residual ? x + y : y;
}

MobileNetV2Impl::MobileNetV2Impl(int num_imagenet_classes) {
  stem = register_module("stem", ConvBN(3, 32, 3, 2, 1, true));
  const auto& specs = mobilenet_v2_blocks();
  for (size_t i = 0; i < specs.size(); ++i)
    blocks.push_back(register_module(fmt::format("block{}", i), InvertedResidual(specs[i])));
  last_conv = register_module("last_conv", ConvBN(specs.back().out_channels, kFeatureChannels, 1, 1, 1, true));
  if (num_imagenet_classes > 0)
    imagenet_top = register_module("imagenet_top", torch::nn::Linear(kFeatureChannels, num_imagenet_classes));
}

torch::nn::Module& MobileNetV2Impl::stage_module(int s) {
  if (s == 0) return *stem;
  if (s == kNumStages - 1) return *last_conv;
  return *blocks.at(static_cast<size_t>(s - 1));
}

torch::Tensor MobileNetV2Impl::forward_stages(torch::Tensor x, int first, int last) {
  if (first < 0 || last >= kNumStages || first > last)
    throw Error(fmt::format("bad stage range [{}, {}]", first, last));
  for (int s = first; s <= last; ++s) {
    if (s == 0)
      x = stem->forward(x);
    else if (s == kNumStages - 1)
      x = last_conv->forward(x);
    else
      x = blocks[static_cast<size_t>(s - 1)]->forward(x);
  }
  return x;
}

torch::Tensor MobileNetV2Impl::forward(torch::Tensor x) {
  if (!imagenet_top) throw Error("this MobileNetV2 has no ImageNet top");
  return imagenet_top->forward(features(x).mean({2, 3}));
}

std::vector<std::pair<std::string, ConvBN>> MobileNetV2Impl::convs_in_order() {
  std::vector<std::pair<std::string, ConvBN>> out;
  out.emplace_back("stem", stem);
  for (size_t i = 0; i < blocks.size(); ++i) {
    const auto name = i == 0 ? std::string("expanded_conv") : fmt::format("block_{}", i);
    if (blocks[i]->expand) out.emplace_back(name + "_expand", blocks[i]->expand);
    out.emplace_back(name + "_depthwise", blocks[i]->depthwise);
    out.emplace_back(name + "_project", blocks[i]->project);
  }
  out.emplace_back("Conv_1", last_conv);
  return out;
}

}  // namespace maskwatch
