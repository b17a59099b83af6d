#include "vision/xnnpack_graph.h"

#include <fmt/format.h>
#include <onnx/onnx_pb.h>
#include <pthreadpool.h>
#include <spdlog/spdlog.h>
#include <xnnpack.h>

#include <thread>

#include "util/error.h"
#include "vision/onnx_to_xnnpack.h"
#include "vision/xnnpack_net.h"

namespace maskwatch {

struct XnnpackGraph::Impl {
  onnx::ModelProto model;
  std::vector<std::string> output_names;
  pthreadpool_t pool = nullptr;
  xnn_subgraph_t subgraph = nullptr;
  xnn_runtime_t runtime = nullptr;
  std::vector<std::vector<float>> constants;  // read by the subgraph while runtimes are made
  cv::Size size;                              // input size the subgraph is defined for
  std::vector<float> input;
  std::vector<std::vector<float>> output_buffers;
  std::vector<cv::Mat> outputs;  // views of output_buffers
  PoolChoice choice;
  bool runtime_pooled = false;

  ~Impl() { release(); if (pool) pthreadpool_destroy(pool); }

  void release() {
    if (runtime) xnn_delete_runtime(runtime), runtime = nullptr;
    if (subgraph) xnn_delete_subgraph(subgraph), subgraph = nullptr;
    constants.clear();
  }

  void define(cv::Size s) {
    release();
    size = cv::Size();  // set again only once a runtime exists for this size
    const uint32_t externals = static_cast<uint32_t>(1 + output_names.size());
    check_xnn(xnn_create_subgraph(externals, 0, &subgraph), "subgraph");
    const auto shape = define_onnx_graph(model.graph(), subgraph, constants, static_cast<size_t>(s.height),
                                         static_cast<size_t>(s.width), output_names);
    input.assign(static_cast<size_t>(s.area()) * 3 + XNN_EXTRA_BYTES / sizeof(float), 0.0f);
    output_buffers.clear();
    outputs.clear();
    for (const auto& dims : shape.output_dims) {
      size_t n = 1;
      for (auto d : dims) n *= d;
      output_buffers.emplace_back(n);
      std::vector<int> sizes(dims.begin(), dims.end());
      outputs.emplace_back(static_cast<int>(sizes.size()), sizes.data(), CV_32F, output_buffers.back().data());
    }
    make_runtime(pool && choice.pooled());
    size = s;
  }

  void make_runtime(bool pooled) {
    if (runtime) xnn_delete_runtime(runtime), runtime = nullptr;
    check_xnn(xnn_create_runtime_v2(subgraph, pooled ? pool : nullptr, XNN_FLAG_YIELD_WORKERS, &runtime),
              "runtime creation");
    std::vector<xnn_external_value> io = {{0, input.data()}};
    for (size_t i = 0; i < output_buffers.size(); ++i)
      io.push_back({static_cast<uint32_t>(1 + i), output_buffers[i].data()});
    check_xnn(xnn_setup_runtime(runtime, io.size(), io.data()), "runtime setup");
    runtime_pooled = pooled;
  }
};

XnnpackGraph::XnnpackGraph(onnx::ModelProto model, std::vector<std::string> outputs, int threads)
    : impl_(std::make_unique<Impl>()) {
  static const xnn_status init = xnn_initialize(nullptr);
  check_xnn(init, "initialisation (this CPU may lack the instructions XNNPACK needs)");
  auto& m = *impl_;
  m.model = std::move(model);
  m.output_names = std::move(outputs);
  const size_t n_threads = threads > 0 ? static_cast<size_t>(threads) : std::thread::hardware_concurrency();
  if (n_threads > 1) m.pool = pthreadpool_create(n_threads);
  m.define(cv::Size(32, 32));  // refuses a graph it cannot run now, not on the first frame
}

XnnpackGraph::~XnnpackGraph() = default;

cv::Mat XnnpackGraph::input(cv::Size size) {
  auto& m = *impl_;
  if (size.width <= 0 || size.height <= 0) throw Error("XNNPACK graph: empty input");
  if (size != m.size) m.define(size);
  return cv::Mat(size, CV_32FC3, m.input.data());
}

const std::vector<cv::Mat>& XnnpackGraph::run() {
  auto& m = *impl_;
  if (!m.runtime) throw Error("XNNPACK graph: no runtime (building it failed)");
  const bool pooled = m.choice.run_timed([&] { check_xnn(xnn_invoke_runtime(m.runtime), "inference"); });
  if (m.pool && pooled != m.runtime_pooled) {
    spdlog::debug("face detector: XNNPACK {} (this thread got {:.0f} % of a core)",
                  pooled ? "back on the thread pool" : "on one thread, other work is using the cores",
                  100 * m.choice.cpu_share());
    try {
      m.make_runtime(pooled);
    } catch (...) {
      m.size = cv::Size();  // the next input() defines the graph again
      throw;
    }
  }
  return m.outputs;
}

}  // namespace maskwatch
