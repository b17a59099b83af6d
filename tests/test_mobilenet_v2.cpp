#include <gtest/gtest.h>

#include "nn/mask_net.h"
#include "nn/mobilenet_v2.h"
#include "util/error.h"

using namespace maskwatch;

TEST(MobileNetV2, LayoutMatchesKeras) {
  const auto& blocks = mobilenet_v2_blocks();
  ASSERT_EQ(blocks.size(), 17u);
  std::vector<int> widths;
  for (const auto& b : blocks) widths.push_back(b.out_channels);
  EXPECT_EQ(widths, (std::vector<int>{16, 24, 24, 32, 32, 32, 64, 64, 64, 64, 96, 96, 96, 160, 160, 160, 320}));
  EXPECT_EQ(blocks[0].expansion, 1);
  for (size_t i = 1; i < blocks.size(); ++i) EXPECT_EQ(blocks[i].expansion, 6);
  MobileNetV2 net;
  EXPECT_EQ(net->convs_in_order().size(), static_cast<size_t>(kNumConvs));
  int residuals = 0;
  for (auto& b : net->blocks) residuals += b->residual;
  EXPECT_EQ(residuals, 10);  // stride 1 and equal widths
  // Keras MobileNetV2 1.0 without top has 2,257,984 parameters (BN included).
  int64_t params = 0;
  for (const auto& p : net->parameters()) params += p.numel();
  for (const auto& b : net->buffers())
    if (b.dim() == 1) params += b.numel();  // BN running mean/var count as (non-trainable) weights in Keras
  EXPECT_EQ(params, 2257984);
}

TEST(MobileNetV2, TfSamePaddingIsAsymmetricForStride2) {
  EXPECT_EQ(same_padding(224, 3, 2), std::make_pair(0, 1));
  EXPECT_EQ(same_padding(112, 3, 1), std::make_pair(1, 1));
  EXPECT_EQ(same_padding(7, 3, 2), std::make_pair(1, 1));  // odd sizes pad both sides
  EXPECT_EQ(same_padding(14, 1, 1), std::make_pair(0, 0));
}

TEST(MobileNetV2, EverySupportedInputSizeWorks) {
  torch::NoGradGuard no_grad;
  MobileNetV2 net;
  net->eval();
  for (int size = 96; size <= 224; size += 32) {
    const auto f = net->features(torch::randn({1, 3, size, size}));
    EXPECT_EQ(f.size(1), 1280);
    EXPECT_EQ(f.size(2), size / 32) << size;
    EXPECT_EQ(stage_output_size(kNumStages - 1, size), size / 32);
    EXPECT_NO_THROW(check_input_size(size));
  }
  EXPECT_THROW(check_input_size(100), Error);
  EXPECT_THROW(check_input_size(256), Error);
  EXPECT_THROW(check_input_size(64), Error);
}

TEST(MobileNetV2, StageRangesComposeToTheWholeNetwork) {
  torch::NoGradGuard no_grad;
  MobileNetV2 net;
  net->eval();
  const auto x = torch::randn({2, 3, 128, 128});
  const auto whole = net->features(x);
  const auto split = net->forward_stages(net->forward_stages(x, 0, 14), 15, kNumStages - 1);
  EXPECT_TRUE(torch::allclose(whole, split));
  EXPECT_EQ(net->forward_stages(x, 0, 14).size(1), stage_channels(14));
}

TEST(MaskNet, FreezingLeavesOnlyTheChosenStagesTrainable) {
  MaskNet net;
  net->freeze_backbone_before(kNumStages);
  int64_t n = 0;
  for (auto& p : net->trainable_parameters()) n += p.numel();
  EXPECT_EQ(n, 1280 * 128 + 128 + 128 * 2 + 2);  // head only
  net->freeze_backbone_before(15);               // blocks 14-16 + final conv
  int64_t tail = 0;
  for (int s = 15; s < kNumStages; ++s)
    for (auto& p : net->backbone->stage_module(s).parameters()) tail += p.numel();
  int64_t m = 0;
  for (auto& p : net->trainable_parameters()) m += p.numel();
  EXPECT_EQ(m, n + tail);
  EXPECT_FALSE(net->backbone->stem->conv->weight.requires_grad());
  EXPECT_TRUE(net->backbone->last_conv->conv->weight.requires_grad());
}

TEST(MaskNet, BackboneBatchNormStaysInInferenceMode) {
  MaskNet net;
  net->set_training(true);
  EXPECT_TRUE(net->is_training());
  EXPECT_TRUE(net->dropout->is_training());
  EXPECT_FALSE(net->backbone->is_training());
  EXPECT_FALSE(net->backbone->blocks[16]->project->bn->is_training());
}
