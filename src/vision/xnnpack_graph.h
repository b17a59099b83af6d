// A fully convolutional ONNX graph with several outputs (the 2023 YuNet face detector) run by
// XNNPACK at whatever input size the frames have. XNNPACK's runtimes are built for one shape,
// so the graph is defined for each input size it meets (about a millisecond for YuNet n) and
// the last four sizes are kept built (a `serve` worker detects on cameras of several sizes). Like the classifier (vision/xnnpack_net.h) it leaves the
// thread pool for the calling thread while other work holds the cores (PoolChoice).
#pragma once
#include <memory>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

namespace onnx {
class ModelProto;
}

namespace maskwatch {

class XnnpackGraph {
 public:
  // `model` is kept (its weights are small next to the activations); `outputs` names the
  // graph outputs run() returns, in that order. threads: pool size (0 = all cores).
  // Throws Error when the graph uses what vision/onnx_to_xnnpack.h does not run.
  XnnpackGraph(onnx::ModelProto model, std::vector<std::string> outputs, int threads = 0);
  ~XnnpackGraph();
  XnnpackGraph(const XnnpackGraph&) = delete;
  XnnpackGraph& operator=(const XnnpackGraph&) = delete;

  // The input for an image of `image` size inside a graph input of `size` (sides >= the
  // image's; the rest is zero padding, right and bottom): a CV_32FC3 Mat (NHWC, batch 1) over
  // the runtime's own buffer, `image` large, to be filled in place (no copy) before run().
  // The padding is cleared only when the image size written into this input size changes.
  cv::Mat input(cv::Size size, cv::Size image);
  // Runs on the input. Returns the outputs as float Mats of their memory-order dims, valid
  // until the next input() or run().
  const std::vector<cv::Mat>& run();

 private:
  struct Instance;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace maskwatch
