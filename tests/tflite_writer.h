// Test-only TFLite writer: turns a LibTorch MobileNetV2 into a .tflite flatbuffer (float32,
// float16 or int8 per-channel weights) so the importer can be tested on files we control,
// including ones that are deliberately not MobileNetV2-shaped.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "nn/mobilenet_v2.h"

namespace maskwatch::test {

enum class WeightEncoding { Float32, Float16, Int8PerChannel };

struct TfliteLayer {
  int op;  // TFLite builtin code: 3 conv, 4 depthwise, 9 fully connected
  std::string name;
  std::vector<int32_t> shape;  // TFLite layout (OHWI, 1HWC, or [out, in])
  std::vector<float> weight;
  std::vector<float> bias;
  int stride = 1;
  int activation = 0;  // 0 none, 3 relu6
};

// The layers of `net` in file order (weights with BN folded), including the top if any.
std::vector<TfliteLayer> layers_of(MobileNetV2& net);
std::string write_tflite(const std::vector<TfliteLayer>& layers, WeightEncoding encoding);

}  // namespace maskwatch::test
