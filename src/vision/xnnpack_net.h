// The mask classifier's ONNX graph run by XNNPACK (the CPU engine behind TFLite) instead of
// OpenCV DNN. It reads the graph our exporter writes (Conv with folded BatchNorm, plain or
// depthwise; Clip; Relu; Add; GlobalAveragePool; Flatten; Gemm; Softmax) and builds an XNNPACK
// subgraph from it, weights converted once to XNNPACK's NHWC layouts. Any other operator or
// attribute is refused with an Error, so a model it cannot run exactly is never run
// approximately. `maskwatch bench` compares it with OpenCV DNN (speed and probabilities).
#pragma once
#include <memory>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

namespace maskwatch {

class XnnpackNet {
 public:
  // `onnx_bytes`: a model that passed check_onnx_bytes; input [N, 3, size, size].
  // threads: XNNPACK's thread pool size (0 = all cores).
  XnnpackNet(const std::string& onnx_bytes, int input_size, int threads = 0);
  ~XnnpackNet();
  XnnpackNet(const XnnpackNet&) = delete;
  XnnpackNet& operator=(const XnnpackNet&) = delete;

  // [N, 3, size, size] float blob (make_blob) -> [N, classes] probabilities. One image
  // per XNNPACK invocation (the runtime is built for batch 1).
  cv::Mat forward(const cv::Mat& nchw_blob);

  // Multiply-accumulates of one image through the graph (convolutions and the dense layer).
  double macs_per_image() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace maskwatch
