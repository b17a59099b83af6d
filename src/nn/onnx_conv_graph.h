// A trainable LibTorch copy of a plain convolutional ONNX graph (Conv, Relu, MaxPool, nearest
// Resize, Add): the face detector's backbone, neck and heads, run up to the named values its
// decoder reads. Its float weights become parameters; `save_onnx` writes the original graph
// back with the trained weights, so everything that reads the original (OpenCV DNN, the
// XNNPACK converter, the decoder) reads the fine-tuned file unchanged.
#pragma once
#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace onnx {
class ModelProto;
}

namespace maskwatch {

class OnnxConvGraph {
 public:
  // Reads the model and keeps the nodes that `outputs` need. Throws Error naming the file and
  // the node when an op or attribute outside the supported set is needed.
  OnnxConvGraph(const std::filesystem::path& model, const std::vector<std::string>& outputs);
  ~OnnxConvGraph();

  // x: [N, C, H, W] float. Returns the named values, in the order given to the constructor,
  // each as the NCHW map of the convolution that feeds it: the Transpose/Reshape that lay it
  // out and a final Sigmoid are not applied (so a sigmoid output comes back as logits).
  std::vector<torch::Tensor> forward(const torch::Tensor& x) const;

  // The weights, by initializer name (every one trainable unless frozen).
  std::map<std::string, torch::Tensor>& parameters() { return params_; }
  std::vector<torch::Tensor> trainable() const;
  // Stops training the weights whose names start with `prefix` (e.g. a head with no labels).
  int freeze(const std::string& prefix);
  // Stops training every weight of the nodes before the first one with a weight named
  // `prefix`... (e.g. "neck.": the backbone, whose fused depthwise weights have bare numbers
  // for names). Returns the number of tensors frozen.
  int freeze_before(const std::string& prefix);

  // The original model with its weights replaced by the current ones and `metadata` set in
  // its metadata_props, written atomically.
  void save_onnx(const std::filesystem::path& path, const std::map<std::string, std::string>& metadata = {}) const;

 private:
  struct Node;
  std::filesystem::path path_;
  std::unique_ptr<onnx::ModelProto> proto_;
  std::vector<Node> nodes_;
  std::vector<std::string> outputs_;
  std::string input_;
  std::map<std::string, torch::Tensor> params_;
};

}  // namespace maskwatch
