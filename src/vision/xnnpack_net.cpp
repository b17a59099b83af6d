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

namespace maskwatch {

namespace {

void check(xnn_status s, const std::string& what) {
  if (s != xnn_status_success) throw Error(fmt::format("XNNPACK: {} failed (status {})", what, static_cast<int>(s)));
}

const onnx::AttributeProto* attribute(const onnx::NodeProto& n, const std::string& name) {
  for (const auto& a : n.attribute())
    if (a.name() == name) return &a;
  return nullptr;
}

int64_t int_attr(const onnx::NodeProto& n, const std::string& name, int64_t fallback) {
  const auto* a = attribute(n, name);
  return a ? a->i() : fallback;
}

std::vector<int64_t> ints_attr(const onnx::NodeProto& n, const std::string& name, std::vector<int64_t> fallback) {
  const auto* a = attribute(n, name);
  return a ? std::vector<int64_t>(a->ints().begin(), a->ints().end()) : fallback;
}

// An initializer as float values and dims.
struct Weights {
  std::vector<int64_t> dims;
  std::vector<float> values;
};

Weights read_initializer(const onnx::TensorProto& t) {
  if (t.data_type() != onnx::TensorProto::FLOAT) throw Error("XNNPACK: initializer '" + t.name() + "' is not float");
  Weights w{{t.dims().begin(), t.dims().end()}, {}};
  if (t.has_raw_data()) {
    w.values.resize(t.raw_data().size() / sizeof(float));
    std::memcpy(w.values.data(), t.raw_data().data(), w.values.size() * sizeof(float));
  } else {
    w.values.assign(t.float_data().begin(), t.float_data().end());
  }
  size_t n = 1;
  for (auto d : w.dims) {
    if (d <= 0 || d > (int64_t{1} << 24)) throw Error("XNNPACK: initializer '" + t.name() + "' has invalid dims");
    n *= static_cast<size_t>(d);
  }
  if (n != w.values.size()) throw Error("XNNPACK: initializer '" + t.name() + "' does not hold its dims' values");
  return w;
}

}  // namespace

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

  uint32_t constant(std::vector<float> values, const std::vector<size_t>& dims) {
    constants.push_back(std::move(values));
    uint32_t id = 0;
    check(xnn_define_tensor_value(subgraph, xnn_datatype_fp32, dims.size(), dims.data(), constants.back().data(),
                                  XNN_INVALID_VALUE_ID, 0, &id),
          "constant");
    return id;
  }

  uint32_t tensor(const std::vector<size_t>& dims, uint32_t external_id = XNN_INVALID_VALUE_ID, uint32_t flags = 0) {
    uint32_t id = 0;
    check(xnn_define_tensor_value(subgraph, xnn_datatype_fp32, dims.size(), dims.data(), nullptr, external_id, flags,
                                  &id),
          "tensor");
    return id;
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
  if (n_threads > 1) m.pool = pthreadpool_create(n_threads);
  m.build(std::move(proto));
  const size_t s = static_cast<size_t>(input_size);
  m.input.resize(s * s * 3 + XNN_EXTRA_BYTES / sizeof(float));
  m.output.resize(static_cast<size_t>(m.classes));
  m.switch_runtime(n_threads > 1);
}

void XnnpackNet::Impl::build(onnx::ModelProto&& proto) {
  auto& m = *this;
  if (proto.graph().input_size() < 1 || proto.graph().output_size() < 1)
    throw Error("XNNPACK: the graph has no input or output");
  drop_subgraph();
  macs = 0;
  check(xnn_create_subgraph(2, 0, &m.subgraph), "subgraph");
  const auto& graph = proto.graph();
  std::map<std::string, const onnx::TensorProto*> inits;
  for (const auto& t : graph.initializer()) inits[t.name()] = &t;
  // Values: id and NHWC shape (4D activations) or [N, C] after Flatten/Gemm.
  struct Value {
    uint32_t id;
    std::vector<size_t> dims;
  };
  std::map<std::string, Value> values;
  const size_t s = static_cast<size_t>(size);
  values[graph.input(0).name()] = {m.tensor({1, s, s, 3}, m.input_id, XNN_VALUE_FLAG_EXTERNAL_INPUT), {1, s, s, 3}};
  const std::string output_name = graph.output(0).name();
  const auto input_of = [&](const onnx::NodeProto& n, int i) -> const Value& {
    const auto it = values.find(n.input(i));
    if (it == values.end()) throw Error(fmt::format("XNNPACK: {} input '{}' is unknown", n.op_type(), n.input(i)));
    return it->second;
  };
  const auto weights = [&](const onnx::NodeProto& n, int i) {
    const auto it = inits.find(n.input(i));
    if (it == inits.end())
      throw Error(fmt::format("XNNPACK: {} weight '{}' is not an initializer", n.op_type(), n.input(i)));
    return read_initializer(*it->second);
  };
  constexpr float kInf = std::numeric_limits<float>::infinity();
  for (const auto& n : graph.node()) {
    const std::string& op = n.op_type();
    if (n.input_size() < 1 || n.output_size() < 1) throw Error("XNNPACK: " + op + " without input or output");
    const bool last = n.output(0) == output_name;
    const auto out_tensor = [&](const std::vector<size_t>& dims) {
      return last ? m.tensor(dims, m.output_id, XNN_VALUE_FLAG_EXTERNAL_OUTPUT) : m.tensor(dims);
    };
    if (op == "Conv") {
      const Value& x = input_of(n, 0);
      Weights w = weights(n, 1);
      if (w.dims.size() != 4 || n.input_size() < 3) throw Error("XNNPACK: Conv without 4D weights and bias");
      const Weights b = weights(n, 2);
      const auto strides = ints_attr(n, "strides", {1, 1}), dilations = ints_attr(n, "dilations", {1, 1});
      const auto pads = ints_attr(n, "pads", {0, 0, 0, 0});  // top, left, bottom, right
      const int64_t group = int_attr(n, "group", 1);
      const size_t o = static_cast<size_t>(w.dims[0]), gi = static_cast<size_t>(w.dims[1]);
      const size_t kh = static_cast<size_t>(w.dims[2]), kw = static_cast<size_t>(w.dims[3]);
      const auto positive = [](const std::vector<int64_t>& v, int64_t lo) {
        return std::all_of(v.begin(), v.end(), [&](int64_t e) { return e >= lo && e <= 64; });
      };
      if (x.dims.size() != 4 || strides.size() != 2 || dilations.size() != 2 || pads.size() != 4 ||
          !positive(strides, 1) || !positive(dilations, 1) || !positive(pads, 0) || b.values.size() != o)
        throw Error("XNNPACK: Conv '" + n.output(0) + "' has attributes or a bias that do not fit");
      const size_t in_c = x.dims[3];
      if (x.dims[1] + pads[0] + pads[2] < dilations[0] * (kh - 1) + 1 ||
          x.dims[2] + pads[1] + pads[3] < dilations[1] * (kw - 1) + 1)
        throw Error("XNNPACK: Conv '" + n.output(0) + "' kernel is larger than its input");
      const size_t oh = (x.dims[1] + pads[0] + pads[2] - dilations[0] * (kh - 1) - 1) / strides[0] + 1;
      const size_t ow = (x.dims[2] + pads[1] + pads[3] - dilations[1] * (kw - 1) - 1) / strides[1] + 1;
      const std::vector<size_t> out_dims = {1, oh, ow, o};
      const uint32_t y = out_tensor(out_dims);
      const uint32_t bias = m.constant(b.values, {o});
      m.macs += static_cast<double>(oh * ow * o * kh * kw * gi);
      if (group == static_cast<int64_t>(in_c) && gi == 1 && o == in_c) {
        // Depthwise: ONNX [C, 1, kh, kw] -> XNNPACK [1, kh, kw, C].
        std::vector<float> f(w.values.size());
        for (size_t c = 0; c < o; ++c)
          for (size_t i = 0; i < kh * kw; ++i) f[i * o + c] = w.values[c * kh * kw + i];
        check(xnn_define_depthwise_convolution_2d(m.subgraph, pads[0], pads[3], pads[2], pads[1], kh, kw, strides[0],
                                                  strides[1], dilations[0], dilations[1], 1, in_c, -kInf, kInf, x.id,
                                                  m.constant(std::move(f), {1, kh, kw, o}), bias, y, 0),
              "depthwise convolution");
      } else if (group == 1 && gi == in_c) {
        // ONNX [O, I, kh, kw] -> XNNPACK [O, kh, kw, I].
        std::vector<float> f(w.values.size());
        for (size_t oc = 0; oc < o; ++oc)
          for (size_t ic = 0; ic < gi; ++ic)
            for (size_t i = 0; i < kh * kw; ++i)
              f[(oc * kh * kw + i) * gi + ic] = w.values[(oc * gi + ic) * kh * kw + i];
        check(xnn_define_convolution_2d(m.subgraph, pads[0], pads[3], pads[2], pads[1], kh, kw, strides[0], strides[1],
                                        dilations[0], dilations[1], 1, gi, o, -kInf, kInf, x.id,
                                        m.constant(std::move(f), {o, kh, kw, gi}), bias, y, 0),
              "convolution");
      } else {
        throw Error(fmt::format("XNNPACK: grouped convolution with {} groups is not supported", group));
      }
      values[n.output(0)] = {y, out_dims};
    } else if (op == "Clip" || op == "Relu") {
      const Value& x = input_of(n, 0);
      float lo = 0, hi = kInf;
      if (op == "Clip") {
        if (n.input_size() > 1) throw Error("XNNPACK: Clip with min/max inputs (opset 11+) is not supported");
        const auto* a = attribute(n, "min");
        const auto* b = attribute(n, "max");
        lo = a ? a->f() : -kInf;
        hi = b ? b->f() : kInf;
      }
      const uint32_t y = out_tensor(x.dims);
      check(xnn_define_clamp(m.subgraph, lo, hi, x.id, y, 0), "clamp");
      values[n.output(0)] = {y, x.dims};
    } else if (op == "Add") {
      const Value& a = input_of(n, 0);
      const Value& b = input_of(n, 1);
      if (a.dims != b.dims) throw Error("XNNPACK: Add of different shapes");
      const uint32_t y = out_tensor(a.dims);
      check(xnn_define_add2(m.subgraph, -kInf, kInf, a.id, b.id, y, 0), "add");
      values[n.output(0)] = {y, a.dims};
    } else if (op == "GlobalAveragePool") {
      const Value& x = input_of(n, 0);
      if (x.dims.size() != 4) throw Error("XNNPACK: GlobalAveragePool of a non-4D tensor");
      const std::vector<size_t> dims = {1, 1, 1, x.dims[3]};
      const uint32_t y = out_tensor(dims);
      check(xnn_define_global_average_pooling_2d(m.subgraph, -kInf, kInf, x.id, y, 0), "global average pooling");
      values[n.output(0)] = {y, dims};
    } else if (op == "Flatten") {
      // [1, 1, 1, C] NHWC holds the same bytes as [1, C]: the next Gemm reshapes (RESHAPE_2D).
      Value x = input_of(n, 0);
      if (x.dims.size() == 4 && (x.dims[1] != 1 || x.dims[2] != 1)) throw Error("XNNPACK: Flatten of a spatial map");
      values[n.output(0)] = x;
    } else if (op == "Gemm") {
      const Value& x = input_of(n, 0);
      const Weights w = weights(n, 1), b = weights(n, 2);
      if (int_attr(n, "transB", 0) != 1 || int_attr(n, "transA", 0) != 0 || w.dims.size() != 2)
        throw Error("XNNPACK: only Gemm with transB=1 is supported");
      const auto* alpha = attribute(n, "alpha");
      const auto* beta = attribute(n, "beta");
      if ((alpha && alpha->f() != 1.0f) || (beta && beta->f() != 1.0f))
        throw Error("XNNPACK: Gemm with alpha/beta != 1");
      const size_t out = static_cast<size_t>(w.dims[0]), in = static_cast<size_t>(w.dims[1]);
      size_t x_elements = 1;
      for (auto d : x.dims) x_elements *= d;
      if (x_elements != in || b.values.size() != out) throw Error("XNNPACK: Gemm shapes do not fit its input");
      const std::vector<size_t> dims = {1, out};
      const uint32_t y = out_tensor(dims);
      m.macs += static_cast<double>(out * in);
      check(xnn_define_fully_connected(m.subgraph, -kInf, kInf, x.id, m.constant(w.values, {out, in}),
                                       m.constant(b.values, {out}), y, XNN_FLAG_TENSORFLOW_RESHAPE_2D),
            "fully connected");
      values[n.output(0)] = {y, dims};
    } else if (op == "Softmax") {
      const Value& x = input_of(n, 0);
      if (x.dims.size() != 2) throw Error("XNNPACK: Softmax over a non-2D tensor");
      const uint32_t y = out_tensor(x.dims);
      check(xnn_define_softmax(m.subgraph, x.id, y, 0), "softmax");
      values[n.output(0)] = {y, x.dims};
    } else {
      throw Error("XNNPACK: operator " + op + " is not supported");
    }
  }
  const auto it = values.find(output_name);
  if (it == values.end() || it->second.dims.size() != 2) throw Error("XNNPACK: the graph's output was not built");
  m.classes = static_cast<int>(it->second.dims[1]);
  inits.clear();
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
    const double wall0 = ms_of(CLOCK_MONOTONIC), cpu0 = ms_of(CLOCK_THREAD_CPUTIME_ID);
    check(xnn_invoke_runtime(m.runtime), "inference");
    const bool pooled = m.choice.update(ms_of(CLOCK_THREAD_CPUTIME_ID) - cpu0, ms_of(CLOCK_MONOTONIC) - wall0);
    if (!m.pinned && m.can_switch_to(pooled)) {
      const std::string line = fmt::format("classifier: {} (this thread got {:.0f} % of a core while classifying)",
                                           pooled ? "cores free again, back on the XNNPACK thread pool"
                                                  : "other work is using the cores, XNNPACK runs on one thread",
                                           100 * m.choice.cpu_share());
      // Under a load that comes and goes this flips every few seconds (123 of 137 lines in
      // 10 minutes of `serve`): the first switch tells what happens, then one line in 10
      // minutes says that it goes on; each switch is still there at debug level.
      if (const auto held = m.switch_log.admit())
        spdlog::info(
            "{}{}", line,
            *held ? fmt::format("; {} more switch(es) since the last such line (each at debug level)", *held) : "");
      else
        spdlog::debug("{}", line);
      m.switch_runtime(pooled);
    }
    std::memcpy(out.ptr<float>(i), m.output.data(), m.output.size() * sizeof(float));
  }
  return out;
}

}  // namespace maskwatch
