#include "vision/xnnpack_graph.h"

#include <fmt/format.h>
#include <onnx/onnx_pb.h>
#include <pthreadpool.h>
#include <spdlog/spdlog.h>
#include <xnnpack.h>

#include <map>
#include <thread>

#include "util/error.h"
#include "vision/onnx_to_xnnpack.h"
#include "vision/xnnpack_net.h"

namespace maskwatch {

namespace {
// Input sizes kept built at once: a worker of `serve` detects on cameras of different
// aspect ratios (384x288 and 384x224 ...); rebuilding on every switch would repack weights.
constexpr size_t kKeptSizes = 4;
}  // namespace

// The graph defined for one input size: its subgraph, runtime and buffers.
struct XnnpackGraph::Instance {
  xnn_subgraph_t subgraph = nullptr;
  xnn_runtime_t runtime = nullptr;
  std::vector<std::vector<float>> constants;  // read by the subgraph while runtimes are made
  std::vector<float> input;
  std::vector<std::vector<float>> output_buffers;
  std::vector<cv::Mat> outputs;  // views of output_buffers
  bool pooled = false;           // the runtime's
  uint64_t last_use = 0;
  cv::Size written;  // the image size last handed out by input(): outside it the input is zero

  Instance() = default;
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;
  ~Instance() {
    if (runtime) xnn_delete_runtime(runtime);
    if (subgraph) xnn_delete_subgraph(subgraph);
  }

  void make_runtime(pthreadpool_t pool) {
    if (runtime) xnn_delete_runtime(runtime), runtime = nullptr;
    check_xnn(xnn_create_runtime_v2(subgraph, pool, XNN_FLAG_YIELD_WORKERS, &runtime), "runtime creation");
    std::vector<xnn_external_value> io = {{0, input.data()}};
    for (size_t i = 0; i < output_buffers.size(); ++i)
      io.push_back({static_cast<uint32_t>(1 + i), output_buffers[i].data()});
    check_xnn(xnn_setup_runtime(runtime, io.size(), io.data()), "runtime setup");
    pooled = pool != nullptr;
  }
};

struct XnnpackGraph::Impl {
  onnx::ModelProto model;
  std::vector<std::string> output_names;
  pthreadpool_t pool = nullptr;
  std::map<std::pair<int, int>, std::unique_ptr<Instance>> instances;  // by (width, height)
  Instance* current = nullptr;
  uint64_t uses = 0;
  PoolChoice choice;

  ~Impl() {
    instances.clear();  // runtimes before the pool they use
    if (pool) pthreadpool_destroy(pool);
  }

  std::unique_ptr<Instance> define(cv::Size s) const {
    auto in = std::make_unique<Instance>();
    const uint32_t externals = static_cast<uint32_t>(1 + output_names.size());
    check_xnn(xnn_create_subgraph(externals, 0, &in->subgraph), "subgraph");
    const auto shape = define_onnx_graph(model.graph(), in->subgraph, in->constants, static_cast<size_t>(s.height),
                                         static_cast<size_t>(s.width), output_names);
    in->input.assign(static_cast<size_t>(s.area()) * 3 + XNN_EXTRA_BYTES / sizeof(float), 0.0f);
    for (const auto& dims : shape.output_dims) {
      size_t n = 1;
      for (auto d : dims) n *= d;
      in->output_buffers.emplace_back(n);
      std::vector<int> sizes(dims.begin(), dims.end());
      in->outputs.emplace_back(static_cast<int>(sizes.size()), sizes.data(), CV_32F, in->output_buffers.back().data());
    }
    in->make_runtime(pool && choice.pooled() ? pool : nullptr);
    return in;
  }

  // The instance for input size `s`, built when new (the least recently used one goes when
  // more than kKeptSizes are kept), on the pool or not as PoolChoice says now.
  Instance& use(cv::Size s) {
    const auto key = std::make_pair(s.width, s.height);
    auto it = instances.find(key);
    if (it == instances.end()) {
      if (instances.size() >= kKeptSizes) {
        auto oldest = instances.begin();
        for (auto i = instances.begin(); i != instances.end(); ++i)
          if (i->second->last_use < oldest->second->last_use) oldest = i;
        if (current == oldest->second.get()) current = nullptr;
        instances.erase(oldest);
      }
      it = instances.emplace(key, define(s)).first;
    }
    Instance& in = *it->second;
    const bool want_pool = pool && choice.pooled();
    if (in.pooled != want_pool) in.make_runtime(want_pool ? pool : nullptr);
    in.last_use = ++uses;
    current = &in;
    return in;
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
  m.pool = create_sleeping_pool(n_threads);
  m.use(cv::Size(32, 32));  // refuses a graph it cannot run now, not on the first frame
}

XnnpackGraph::~XnnpackGraph() = default;

cv::Mat XnnpackGraph::input(cv::Size size, cv::Size image) {
  auto& m = *impl_;
  if (size.width <= 0 || size.height <= 0 || image.width <= 0 || image.height <= 0 || image.width > size.width ||
      image.height > size.height)
    throw Error("XNNPACK graph: empty input, or an image larger than the input");
  m.current = nullptr;  // stays unset if building fails
  Instance& in = m.use(size);
  cv::Mat all(size, CV_32FC3, in.input.data());
  if (image != in.written) all.setTo(cv::Scalar::all(0)), in.written = image;
  return all(cv::Rect(cv::Point(), image));
}

const std::vector<cv::Mat>& XnnpackGraph::run() {
  auto& m = *impl_;
  if (!m.current || !m.current->runtime) throw Error("XNNPACK graph: no runtime (input() failed or was not called)");
  Instance& in = *m.current;
  const bool pooled = m.choice.run_timed([&] { invoke_and_yield(in.runtime, in.pooled ? m.pool : nullptr); });
  if (m.pool && pooled != in.pooled)
    spdlog::debug("face detector: XNNPACK {} (this thread got {:.0f} % of a core)",
                  pooled ? "back on the thread pool" : "on one thread, other work is using the cores",
                  100 * m.choice.cpu_share());
  // The runtime moves (or not) at the next input(): the outputs stay valid until then.
  return in.outputs;
}

}  // namespace maskwatch
