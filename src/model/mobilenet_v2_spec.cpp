#include "model/mobilenet_v2_spec.h"

#include <fmt/format.h>

#include <algorithm>

#include "util/error.h"

namespace maskwatch {

const std::vector<BlockSpec>& mobilenet_v2_blocks() {
  // (expansion t, output channels c, repeats n, first stride s) from the MobileNetV2 paper.
  static const std::vector<BlockSpec> blocks = [] {
    const int table[][4] = {{1, 16, 1, 1}, {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                            {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
    std::vector<BlockSpec> out;
    int in = 32;
    for (const auto& row : table)
      for (int i = 0; i < row[2]; ++i) {
        out.push_back({row[0], in, row[1], i == 0 ? row[3] : 1});
        in = row[1];
      }
    return out;
  }();
  return blocks;
}

int stage_channels(int stage) {
  if (stage < 0 || stage >= kNumStages) throw Error(fmt::format("stage {} out of range", stage));
  if (stage == 0) return 32;
  if (stage == kNumStages - 1) return kFeatureChannels;
  return mobilenet_v2_blocks()[stage - 1].out_channels;
}

int stage_output_size(int stage, int input_size) {
  int size = (input_size + 1) / 2;  // stem, stride 2, SAME: ceil(n/2)
  for (int s = 1; s <= stage && s < kNumStages - 1; ++s) {
    const int stride = mobilenet_v2_blocks()[s - 1].stride;
    size = (size + stride - 1) / stride;
  }
  return size;
}

void check_input_size(int input_size) {
  if (input_size < 96 || input_size > 224 || input_size % 32 != 0)
    throw Error(fmt::format("input size {} not supported: use a multiple of 32 from 96 to 224", input_size));
}

std::pair<int, int> same_padding(int in_size, int kernel, int stride) {
  const int out = (in_size + stride - 1) / stride;
  const int total = std::max((out - 1) * stride + kernel - in_size, 0);
  return {total / 2, total - total / 2};
}

}  // namespace maskwatch
