// Defines an ONNX graph's nodes in an XNNPACK subgraph, weights converted once to XNNPACK's
// NHWC layouts. Shared by the mask classifier (vision/xnnpack_net.h) and the 2023 YuNet face
// detector (vision/yunet_2023.h). Operators: Conv (plain or depthwise, with bias), Relu, Clip
// (attributes), Add (same shapes), MaxPool, GlobalAveragePool, Flatten, Gemm (transB), Softmax,
// Sigmoid, Resize (nearest, asymmetric, floor, integer scale: a depthwise deconvolution with a
// kernel of ones, which repeats each pixel exactly as nearest does), and the detection heads'
// Transpose (0, 2, 3, 1) + Reshape. Any other operator or attribute is refused with an Error,
// so a model that cannot be run exactly is never run approximately.
//
// Activations are NHWC in XNNPACK where ONNX says NCHW. A Transpose (0, 2, 3, 1) of such a
// value is therefore its memory as it is; it and Flatten only relabel the value.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace onnx {
class GraphProto;
}
struct xnn_subgraph;

namespace maskwatch {

struct XnnpackGraphShape {
  double macs = 0;  // multiply-accumulates per image (convolutions and dense layers)
  // Per requested output, its dims in memory order (an NCHW map: [1, H, W, C]).
  std::vector<std::vector<size_t>> output_dims;
};

// Defines `graph` in `subgraph` (created with at least 1 + outputs.size() external ids) for an
// input of [1, height, width, 3] bound to external id 0; `outputs[i]` is bound to external
// id 1 + i. Converted weights go to `constants`, which must outlive every runtime made from
// the subgraph. Throws Error naming what does not fit.
XnnpackGraphShape define_onnx_graph(const onnx::GraphProto& graph, xnn_subgraph* subgraph,
                                    std::vector<std::vector<float>>& constants, size_t height, size_t width,
                                    const std::vector<std::string>& outputs);

// Throws Error "XNNPACK: <what> failed (status N)" unless `status` is xnn_status_success.
void check_xnn(int status, const std::string& what);

}  // namespace maskwatch
