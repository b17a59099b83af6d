#include "nn/mask_net.h"

#include "util/error.h"

namespace maskwatch {

MaskNetImpl::MaskNetImpl(const MaskNetOptions& o) : options(o) {
  if (o.num_classes < 2) throw Error("a classifier needs at least two classes");
  backbone = register_module("backbone", MobileNetV2(0));
  fc1 = register_module("fc1", torch::nn::Linear(kFeatureChannels, o.hidden));
  dropout = register_module("dropout", torch::nn::Dropout(o.dropout));
  fc2 = register_module("fc2", torch::nn::Linear(o.hidden, o.num_classes));
  // Keras Dense defaults: Glorot-uniform kernel, zero bias.
  torch::NoGradGuard no_grad;
  for (auto* fc : {&fc1, &fc2}) {
    torch::nn::init::xavier_uniform_((*fc)->weight);
    torch::nn::init::zeros_((*fc)->bias);
  }
}

torch::Tensor MaskNetImpl::head(torch::Tensor pooled) {
  return fc2->forward(dropout->forward(torch::relu(fc1->forward(pooled))));
}

torch::Tensor MaskNetImpl::forward(torch::Tensor images) { return head(pool(backbone->features(images))); }

void MaskNetImpl::set_training(bool on) {
  train(on);
  backbone->eval();
}

void MaskNetImpl::freeze_backbone_before(int first_trainable) {
  for (auto& p : backbone->parameters()) p.set_requires_grad(false);
  for (int s = std::max(0, first_trainable); s < kNumStages; ++s) {
    for (auto& p : backbone->stage_module(s).parameters()) p.set_requires_grad(true);
  }
}

std::vector<torch::Tensor> MaskNetImpl::trainable_parameters() {
  std::vector<torch::Tensor> out;
  for (auto& p : parameters())
    if (p.requires_grad()) out.push_back(p);
  return out;
}

}  // namespace maskwatch
