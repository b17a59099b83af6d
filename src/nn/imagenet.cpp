#include "nn/imagenet.h"

#include <fmt/format.h>

#include <sstream>

#include "media/image_io.h"
#include "nn/blob_tensor.h"
#include "util/error.h"
#include "util/files.h"

namespace maskwatch {

std::vector<std::string> read_labels(const std::filesystem::path& path) {
  std::istringstream in(read_file_text(path, "labels file"));
  std::vector<std::string> labels;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    labels.push_back(line);
  }
  return labels;
}

std::vector<ClassScore> imagenet_topk(MobileNetV2& net, const std::vector<std::string>& labels,
                                      const std::filesystem::path& image, int k) {
  const cv::Mat img = load_image_or_throw(image);
  torch::NoGradGuard no_grad;
  net->eval();
  const auto input = images_to_tensor({center_square(img)}, 224);
  const auto probs = torch::softmax(net->forward(input), 1)[0];
  const auto top = probs.topk(std::min<int64_t>(k, probs.size(0)));
  const auto values = std::get<0>(top), indices = std::get<1>(top);
  std::vector<ClassScore> out;
  for (int64_t i = 0; i < values.size(0); ++i) {
    const int idx = static_cast<int>(indices[i].item<int64_t>());
    const std::string label =
        idx < static_cast<int>(labels.size()) ? labels[static_cast<size_t>(idx)] : fmt::format("class {}", idx);
    out.push_back({label, idx, values[i].item<float>()});
  }
  return out;
}

}  // namespace maskwatch
