// MobileNetV2 1.0 layout facts (no LibTorch): block table, stage numbering, sizes and TF
// "SAME" padding. The LibTorch module (mobilenet_v2.h), the importer, the exporter and the
// sidecar validation share them.
//
// Stages: 0 = stem conv, 1..17 = inverted-residual blocks 0..16 (Keras expanded_conv,
// block_1..block_16), 18 = final 1x1 conv to 1280 (Keras Conv_1).
#pragma once
#include <utility>
#include <vector>

namespace maskwatch {

constexpr int kNumStages = 19;
constexpr int kFeatureChannels = 1280;
constexpr int kNumConvs = 52;           // stem + 16 blocks x 3 + block 0 x 2 + final conv
constexpr double kBatchNormEps = 1e-3;  // Keras' default

struct BlockSpec {
  int expansion, in_channels, out_channels, stride;
};
// The 17 inverted-residual blocks of MobileNetV2 1.0.
const std::vector<BlockSpec>& mobilenet_v2_blocks();

// Output channels of stage s (0..18).
int stage_channels(int stage);
// Spatial size after stage s for a square input of `input_size` pixels (TF SAME rounding).
int stage_output_size(int stage, int input_size);
// Throws Error unless input_size is a multiple of 32 in [96, 224].
void check_input_size(int input_size);

// TF "SAME" padding for one dimension: {before, after}.
std::pair<int, int> same_padding(int in_size, int kernel, int stride);

}  // namespace maskwatch
