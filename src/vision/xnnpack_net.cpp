#include "vision/xnnpack_net.h"

#include <fmt/format.h>
#include <onnx/onnx_pb.h>
#include <pthreadpool.h>
#include <xnnpack.h>

#include <spdlog/spdlog.h>
#include <time.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <map>
#include <thread>

#include "util/error.h"
#include "util/log_text.h"
#include "vision/onnx_to_xnnpack.h"

namespace maskwatch {

namespace {
void check(xnn_status s, const std::string& what) { check_xnn(static_cast<int>(s), what); }
}  // namespace

namespace {
void send_workers_to_sleep(pthreadpool_t pool) {
  pthreadpool_parallelize_1d(
      pool, [](void*, size_t) {}, nullptr, pthreadpool_get_threads_count(pool), PTHREADPOOL_FLAG_YIELD_WORKERS);
}
}  // namespace

void invoke_and_yield(xnn_runtime_t runtime, pthreadpool_t pool) {
  check(xnn_invoke_runtime(runtime), "inference");
  if (pool) send_workers_to_sleep(pool);
}

pthreadpool_t create_sleeping_pool(size_t n_threads) {
  if (n_threads <= 1) return nullptr;
  pthreadpool_t pool = pthreadpool_create(n_threads);
  if (pool) send_workers_to_sleep(pool);
  return pool;
}

struct XnnpackNet::Impl {
  int size = 0, classes = 0;
  double macs = 0;
  pthreadpool_t pool = nullptr;
  xnn_subgraph_t subgraph = nullptr;
  xnn_runtime_t runtime = nullptr;
  std::vector<std::vector<float>> constants;  // must outlive the runtime
  std::vector<float> input, output;
  uint32_t input_id = 0, output_id = 1;
  PoolChoice choice;
  bool runtime_pooled = false;
  std::function<onnx::ModelProto()> reload;  // empty: the subgraph is kept for rebuilds
  bool reload_failed = false;
  bool pinned = false;  // set_pooled was called: PoolChoice no longer moves the runtime
  LogThrottle switch_log{std::chrono::minutes(10)};

  // Defines the subgraph and its weights (NHWC copies) from the model, which it empties.
  void build(onnx::ModelProto&& proto);

  // The converted weights are only read while a runtime is created (this XNNPACK packs
  // convolution and dense weights into its own buffers then): dropping them keeps 9.5 MB less
  // resident for the shipped model. The API asks static data to outlive runtimes, so this
  // relies on the snapshot's behaviour, and checks it: the weights become NaN before they
  // are freed, and any later read would turn every output into NaN (the classifier's probe
  // forward and the rebuild test would fail).
  void drop_subgraph() {
    if (subgraph) xnn_delete_subgraph(subgraph), subgraph = nullptr;
    for (auto& c : constants) std::fill(c.begin(), c.end(), std::numeric_limits<float>::quiet_NaN());
    std::vector<std::vector<float>>().swap(constants);
  }

  // Whether switch_runtime(pooled) would change anything.
  bool can_switch_to(bool pooled) const { return pool && pooled != runtime_pooled && !reload_failed; }

  // A runtime on the pool or on one thread; rebuilds the subgraph from `reload` when it was
  // dropped, and drops it again afterwards. If the model cannot be read again, the current
  // runtime stays (logged once).
  void switch_runtime(bool pooled) {
    if (!subgraph) {
      onnx::ModelProto proto;
      try {
        proto = reload();
      } catch (const std::exception& e) {
        spdlog::warn("classifier: keeping the current XNNPACK runtime, the model cannot be read again ({})", e.what());
        reload_failed = true;
        return;
      }
      if (runtime) xnn_delete_runtime(runtime), runtime = nullptr;  // its packed weights go before new ones come
      build(std::move(proto));
    }
    make_runtime(pooled);
    if (reload) drop_subgraph();
  }

  // (Re)creates the runtime on the pool or on the calling thread alone. Weights are packed
  // again: about as long as one inference.
  void make_runtime(bool pooled) {
    if (runtime) xnn_delete_runtime(runtime), runtime = nullptr;
    // Workers sleep after each inference instead of spinning: YuNet (OpenCV threads) runs
    // next on the same cores, and so may other processes.
    check(xnn_create_runtime_v2(subgraph, pooled ? pool : nullptr, XNN_FLAG_YIELD_WORKERS, &runtime),
          "runtime creation");
    const xnn_external_value io[2] = {{input_id, input.data()}, {output_id, output.data()}};
    check(xnn_setup_runtime(runtime, 2, io), "runtime setup");
    runtime_pooled = pooled;
  }

  ~Impl() {
    if (runtime) xnn_delete_runtime(runtime);
    if (subgraph) xnn_delete_subgraph(subgraph);
    if (pool) pthreadpool_destroy(pool);
  }
};

namespace {
onnx::ModelProto parse(const std::string& bytes) {
  onnx::ModelProto proto;
  if (!proto.ParseFromString(bytes)) throw Error("XNNPACK: the ONNX model does not parse");
  return proto;
}
}  // namespace

XnnpackNet::XnnpackNet(const std::string& bytes, int input_size, int threads)
    : XnnpackNet(parse(bytes), input_size, threads) {}

XnnpackNet::XnnpackNet(onnx::ModelProto&& proto, int input_size, int threads, std::function<onnx::ModelProto()> reload)
    : impl_(std::make_unique<Impl>()) {
  static const xnn_status init = xnn_initialize(nullptr);
  check(init, "initialisation (this CPU may lack the instructions XNNPACK needs)");
  if (input_size < 16 || input_size > 1024) throw Error("XNNPACK: input size must be 16-1024");
  auto& m = *impl_;
  m.size = input_size;
  m.reload = std::move(reload);
  const size_t n_threads = threads > 0 ? static_cast<size_t>(threads) : std::thread::hardware_concurrency();
  m.pool = create_sleeping_pool(n_threads);
  m.build(std::move(proto));
  const size_t s = static_cast<size_t>(input_size);
  m.input.resize(s * s * 3 + XNN_EXTRA_BYTES / sizeof(float));
  m.output.resize(static_cast<size_t>(m.classes));
  m.switch_runtime(n_threads > 1);
}

void XnnpackNet::Impl::build(onnx::ModelProto&& proto) {
  if (proto.graph().input_size() < 1 || proto.graph().output_size() < 1)
    throw Error("XNNPACK: the graph has no input or output");
  drop_subgraph();
  check(xnn_create_subgraph(2, 0, &subgraph), "subgraph");
  const size_t s = static_cast<size_t>(size);
  const auto shape = define_onnx_graph(proto.graph(), subgraph, constants, s, s, {proto.graph().output(0).name()});
  if (shape.output_dims[0].size() != 2) throw Error("XNNPACK: the classifier's output is not [1, classes]");
  macs = shape.macs;
  classes = static_cast<int>(shape.output_dims[0][1]);
  onnx::ModelProto().Swap(&proto);  // frees the protobuf's copy of the weights (Clear() keeps it)
}

XnnpackNet::~XnnpackNet() = default;

double XnnpackNet::macs_per_image() const { return impl_->macs; }

bool XnnpackNet::pooled() const { return impl_->runtime_pooled; }

void XnnpackNet::set_pooled(bool pooled) {
  auto& m = *impl_;
  m.pinned = true;
  if (m.can_switch_to(pooled)) m.switch_runtime(pooled);
}

bool PoolChoice::update(double cpu_ms, double wall_ms) {
  if (wall_ms <= 0) return pooled_;
  share_ += 0.2 * (std::min(1.0, cpu_ms / wall_ms) - share_);
  if (++since_switch_ < (pooled_ ? kMinPooledBeforeLeaving : kMinAloneBeforeReturning)) return pooled_;
  if ((pooled_ && share_ < kLeavePoolBelow) || (!pooled_ && share_ > kReturnAbove)) {
    pooled_ = !pooled_;
    since_switch_ = 0;
  }
  return pooled_;
}

namespace {
double ms_of(clockid_t clock) {
  timespec t{};
  clock_gettime(clock, &t);
  return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) / 1e6;
}
}  // namespace

bool PoolChoice::run_timed(const std::function<void()>& inference) {
  const double wall0 = ms_of(CLOCK_MONOTONIC), cpu0 = ms_of(CLOCK_THREAD_CPUTIME_ID);
  inference();
  return update(ms_of(CLOCK_THREAD_CPUTIME_ID) - cpu0, ms_of(CLOCK_MONOTONIC) - wall0);
}

cv::Mat XnnpackNet::forward(const cv::Mat& blob) {
  auto& m = *impl_;
  if (blob.dims != 4 || blob.size[1] != 3 || blob.size[2] != m.size || blob.size[3] != m.size)
    throw Error(fmt::format("XNNPACK: input must be [N, 3, {}, {}]", m.size, m.size));
  const int n = blob.size[0];
  const size_t plane = static_cast<size_t>(m.size) * static_cast<size_t>(m.size);
  cv::Mat out(n, m.classes, CV_32F);
  for (int i = 0; i < n; ++i) {
    const float* src = blob.ptr<float>(i);
    for (size_t p = 0; p < plane; ++p)  // NCHW -> NHWC
      for (size_t c = 0; c < 3; ++c) m.input[p * 3 + c] = src[c * plane + p];
    const bool pooled = m.choice.run_timed([&] { invoke_and_yield(m.runtime, m.runtime_pooled ? m.pool : nullptr); });
    if (!m.pinned && m.can_switch_to(pooled)) {
      const std::string line = fmt::format("classifier: {} (this thread got {:.0f} % of a core while classifying)",
                                           pooled ? "cores free again, back on the XNNPACK thread pool"
                                                  : "other work is using the cores, XNNPACK runs on one thread",
                                           100 * m.choice.cpu_share());
      // Under a load that comes and goes this flips every few seconds (123 of 137 lines in
      // 10 minutes of `serve`): the first switch tells what happens, then one line in 10
      // minutes says that it goes on; each switch is still there at debug level.
      m.switch_log.log(spdlog::level::info, line, "switches, each at debug level,");
      m.switch_runtime(pooled);
    }
    std::memcpy(out.ptr<float>(i), m.output.data(), m.output.size() * sizeof(float));
  }
  return out;
}

}  // namespace maskwatch
