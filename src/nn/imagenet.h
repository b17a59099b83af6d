// ImageNet sanity check of an imported backbone: top-k classes for an image.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "nn/mobilenet_v2.h"

namespace maskwatch {

struct ClassScore {
  std::string label;
  int index = 0;
  float prob = 0;
};

// One label per line; throws Error if the file is missing/empty.
std::vector<std::string> read_labels(const std::filesystem::path& path);

// Centre square crop, 224x224, [-1, 1]; softmax over the net's ImageNet top.
std::vector<ClassScore> imagenet_topk(MobileNetV2& net, const std::vector<std::string>& labels,
                                      const std::filesystem::path& image, int k = 5);

}  // namespace maskwatch
