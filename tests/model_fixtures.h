// Model fixtures for tests: the imported ImageNet backbone (loaded once per process) and
// networks with randomised BatchNorm statistics, so BN folding is really exercised.
#pragma once
#include <torch/torch.h>

#include <opencv2/core.hpp>

#include "nn/mask_net.h"
#include "nn/mobilenet_v2.h"

namespace maskwatch::test {

// Gives every BN layer random gamma/beta/mean/var (deterministic under torch::manual_seed).
void randomize_batchnorm(MobileNetV2& net);
// A mask classifier with the real imported ImageNet backbone (quant file) and a random head.
MaskNet imported_mask_net(int num_classes = 2);
// Real photos (ImageNet samples and a few seed images) as BGR Mats.
std::vector<cv::Mat> real_images();

}  // namespace maskwatch::test
