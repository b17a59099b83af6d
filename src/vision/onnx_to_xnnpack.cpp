#include "vision/onnx_to_xnnpack.h"

#include <fmt/format.h>
#include <onnx/onnx_pb.h>
#include <xnnpack.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <map>

#include "util/error.h"

namespace maskwatch {

void check_xnn(int s, const std::string& what) {
  if (s != xnn_status_success) throw Error(fmt::format("XNNPACK: {} failed (status {})", what, s));
}

namespace {

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

std::string string_attr(const onnx::NodeProto& n, const std::string& name, const std::string& fallback) {
  const auto* a = attribute(n, name);
  return a ? a->s() : fallback;
}

// An initializer's values as T (float or int64) and its dims.
template <typename T>
struct Tensor {
  std::vector<int64_t> dims;
  std::vector<T> values;
};

template <typename T>
Tensor<T> read_initializer(const onnx::TensorProto& t) {
  constexpr auto want = std::is_same_v<T, float> ? onnx::TensorProto::FLOAT : onnx::TensorProto::INT64;
  if (t.data_type() != want)
    throw Error(fmt::format("XNNPACK: initializer '{}' is not {}", t.name(), std::is_same_v<T, float> ? "float" : "int64"));
  Tensor<T> w{{t.dims().begin(), t.dims().end()}, {}};
  if (t.has_raw_data()) {
    w.values.resize(t.raw_data().size() / sizeof(T));
    std::memcpy(w.values.data(), t.raw_data().data(), w.values.size() * sizeof(T));
  } else if constexpr (std::is_same_v<T, float>) {
    w.values.assign(t.float_data().begin(), t.float_data().end());
  } else {
    w.values.assign(t.int64_data().begin(), t.int64_data().end());
  }
  size_t n = 1;
  for (auto d : w.dims) {
    if (d < 0 || d > (int64_t{1} << 24)) throw Error("XNNPACK: initializer '" + t.name() + "' has invalid dims");
    n *= static_cast<size_t>(d);
  }
  if (n != w.values.size()) throw Error("XNNPACK: initializer '" + t.name() + "' does not hold its dims' values");
  return w;
}

size_t elements(const std::vector<size_t>& dims) {
  size_t n = 1;
  for (auto d : dims) n *= d;
  return n;
}

// One node after another, each defined from the values its inputs name.
class Definer {
 public:
  Definer(const onnx::GraphProto& g, xnn_subgraph_t sg, std::vector<std::vector<float>>& constants,
          const std::vector<std::string>& outputs)
      : graph_(g), sg_(sg), constants_(constants), outputs_(outputs) {
    for (const auto& t : g.initializer()) inits_[t.name()] = &t;
  }

  XnnpackGraphShape define(size_t height, size_t width) {
    if (graph_.input_size() < 1) throw Error("XNNPACK: the graph has no input");
    const std::vector<size_t> in_dims = {1, height, width, 3};
    values_[graph_.input(0).name()] = {tensor(in_dims, 0, XNN_VALUE_FLAG_EXTERNAL_INPUT), in_dims, true};
    for (const auto& n : graph_.node()) node(n);
    XnnpackGraphShape shape;
    shape.macs = macs_;
    for (const auto& name : outputs_) {
      const auto it = values_.find(name);
      if (it == values_.end() || !it->second.external)
        throw Error("XNNPACK: the graph's output '" + name + "' was not built");
      shape.output_dims.push_back(it->second.dims);
    }
    return shape;
  }

 private:
  struct Value {
    uint32_t id;
    std::vector<size_t> dims;  // XNNPACK's, memory order
    bool spatial;              // an ONNX NCHW map held as NHWC (dims [1, H, W, C])
    bool external = false;
  };
  static constexpr float kInf = std::numeric_limits<float>::infinity();

  uint32_t tensor(const std::vector<size_t>& dims, uint32_t external_id = XNN_INVALID_VALUE_ID, uint32_t flags = 0) {
    uint32_t id = 0;
    check_xnn(xnn_define_tensor_value(sg_, xnn_datatype_fp32, dims.size(), dims.data(), nullptr, external_id, flags, &id),
              "tensor");
    return id;
  }

  uint32_t constant(std::vector<float> values, const std::vector<size_t>& dims) {
    constants_.push_back(std::move(values));
    uint32_t id = 0;
    check_xnn(xnn_define_tensor_value(sg_, xnn_datatype_fp32, dims.size(), dims.data(), constants_.back().data(),
                                      XNN_INVALID_VALUE_ID, 0, &id),
              "constant");
    return id;
  }

  // The output value of node `n`: external when the caller asked for it.
  Value& output(const onnx::NodeProto& n, const std::vector<size_t>& dims, bool spatial) {
    const auto it = std::find(outputs_.begin(), outputs_.end(), n.output(0));
    const bool external = it != outputs_.end();
    const uint32_t id = external ? tensor(dims, static_cast<uint32_t>(1 + (it - outputs_.begin())),
                                          XNN_VALUE_FLAG_EXTERNAL_OUTPUT)
                                 : tensor(dims);
    return values_[n.output(0)] = {id, dims, spatial, external};
  }

  // A value that only relabels another (same memory); it cannot be a graph output.
  void relabel(const onnx::NodeProto& n, Value v) {
    if (std::find(outputs_.begin(), outputs_.end(), n.output(0)) != outputs_.end())
      throw Error("XNNPACK: a graph output made by " + n.op_type() + " is not supported");
    v.external = false;
    values_[n.output(0)] = std::move(v);
  }

  const Value& input(const onnx::NodeProto& n, int i) const {
    const auto it = values_.find(n.input(i));
    if (it == values_.end()) throw Error(fmt::format("XNNPACK: {} input '{}' is unknown", n.op_type(), n.input(i)));
    return it->second;
  }

  const Value& map_input(const onnx::NodeProto& n) const {
    const Value& x = input(n, 0);
    if (!x.spatial || x.dims.size() != 4) throw Error("XNNPACK: " + n.op_type() + " of a tensor that is not an image map");
    return x;
  }

  template <typename T = float>
  Tensor<T> init(const onnx::NodeProto& n, int i) const {
    const auto it = inits_.find(n.input(i));
    if (it == inits_.end())
      throw Error(fmt::format("XNNPACK: {} input '{}' is not an initializer", n.op_type(), n.input(i)));
    return read_initializer<T>(*it->second);
  }

  void node(const onnx::NodeProto& n) {
    const std::string& op = n.op_type();
    if (n.input_size() < 1 || n.output_size() < 1) throw Error("XNNPACK: " + op + " without input or output");
    if (op == "Conv") return conv(n);
    if (op == "MaxPool") return max_pool(n);
    if (op == "Resize") return resize(n);
    if (op == "Clip" || op == "Relu") {
      const Value& x = input(n, 0);
      float lo = 0, hi = kInf;
      if (op == "Clip") {
        if (n.input_size() > 1) throw Error("XNNPACK: Clip with min/max inputs (opset 11+) is not supported");
        const auto* a = attribute(n, "min");
        const auto* b = attribute(n, "max");
        lo = a ? a->f() : -kInf;
        hi = b ? b->f() : kInf;
      }
      const Value x_copy = x;
      check_xnn(xnn_define_clamp(sg_, lo, hi, x_copy.id, output(n, x_copy.dims, x_copy.spatial).id, 0), "clamp");
      return;
    }
    if (op == "Sigmoid") {
      const Value x = input(n, 0);
      check_xnn(xnn_define_sigmoid(sg_, x.id, output(n, x.dims, x.spatial).id, 0), "sigmoid");
      return;
    }
    if (op == "Add") {
      const Value a = input(n, 0), b = input(n, 1);
      if (a.dims != b.dims || a.spatial != b.spatial) throw Error("XNNPACK: Add of different shapes");
      check_xnn(xnn_define_add2(sg_, -kInf, kInf, a.id, b.id, output(n, a.dims, a.spatial).id, 0), "add");
      return;
    }
    if (op == "GlobalAveragePool") {
      const Value x = map_input(n);
      check_xnn(xnn_define_global_average_pooling_2d(sg_, -kInf, kInf, x.id, output(n, {1, 1, 1, x.dims[3]}, true).id, 0),
                "global average pooling");
      return;
    }
    if (op == "Flatten") {
      // [1, 1, 1, C] NHWC holds the same bytes as [1, C]: the next Gemm reshapes (RESHAPE_2D).
      Value x = map_input(n);
      if (x.dims[1] != 1 || x.dims[2] != 1) throw Error("XNNPACK: Flatten of a spatial map");
      x.spatial = false;
      return relabel(n, x);
    }
    if (op == "Transpose") {
      // NCHW -> NHWC of a map that XNNPACK already holds as NHWC: the same memory.
      Value x = map_input(n);
      if (ints_attr(n, "perm", {}) != std::vector<int64_t>{0, 2, 3, 1})
        throw Error("XNNPACK: only Transpose with perm (0, 2, 3, 1) of an image map is supported");
      x.spatial = false;
      return relabel(n, x);
    }
    if (op == "Reshape") return reshape(n);
    if (op == "Gemm") return gemm(n);
    if (op == "Softmax") {
      const Value x = input(n, 0);
      if (x.dims.size() != 2) throw Error("XNNPACK: Softmax over a non-2D tensor");
      check_xnn(xnn_define_softmax(sg_, x.id, output(n, x.dims, false).id, 0), "softmax");
      return;
    }
    throw Error("XNNPACK: operator " + op + " is not supported");
  }

  // Padding given as `auto_pad` (SAME_UPPER, ...) is not read here: refused, never ignored.
  static void check_explicit_pads(const onnx::NodeProto& n) {
    const std::string pad = string_attr(n, "auto_pad", "NOTSET");
    if (pad != "NOTSET") throw Error("XNNPACK: " + n.op_type() + " '" + n.output(0) + "' uses auto_pad " + pad);
  }

  void conv(const onnx::NodeProto& n) {
    check_explicit_pads(n);
    const Value x = map_input(n);
    Tensor<float> w = init(n, 1);
    if (w.dims.size() != 4 || n.input_size() < 3) throw Error("XNNPACK: Conv without 4D weights and bias");
    const Tensor<float> b = init(n, 2);
    const auto strides = ints_attr(n, "strides", {1, 1}), dilations = ints_attr(n, "dilations", {1, 1});
    const auto pads = ints_attr(n, "pads", {0, 0, 0, 0});  // top, left, bottom, right
    const int64_t group = int_attr(n, "group", 1);
    const size_t o = static_cast<size_t>(w.dims[0]), gi = static_cast<size_t>(w.dims[1]);
    const size_t kh = static_cast<size_t>(w.dims[2]), kw = static_cast<size_t>(w.dims[3]);
    const auto in_range = [](const std::vector<int64_t>& v, int64_t lo) {
      return std::all_of(v.begin(), v.end(), [&](int64_t e) { return e >= lo && e <= 64; });
    };
    if (strides.size() != 2 || dilations.size() != 2 || pads.size() != 4 || !in_range(strides, 1) ||
        !in_range(dilations, 1) || !in_range(pads, 0) || b.values.size() != o)
      throw Error("XNNPACK: Conv '" + n.output(0) + "' has attributes or a bias that do not fit");
    const size_t in_c = x.dims[3];
    if (x.dims[1] + pads[0] + pads[2] < dilations[0] * (kh - 1) + 1 ||
        x.dims[2] + pads[1] + pads[3] < dilations[1] * (kw - 1) + 1)
      throw Error("XNNPACK: Conv '" + n.output(0) + "' kernel is larger than its input");
    const size_t oh = (x.dims[1] + pads[0] + pads[2] - dilations[0] * (kh - 1) - 1) / strides[0] + 1;
    const size_t ow = (x.dims[2] + pads[1] + pads[3] - dilations[1] * (kw - 1) - 1) / strides[1] + 1;
    const uint32_t bias = constant(b.values, {o});
    macs_ += static_cast<double>(oh * ow * o * kh * kw * gi);
    if (group == static_cast<int64_t>(in_c) && gi == 1 && o == in_c) {
      // Depthwise: ONNX [C, 1, kh, kw] -> XNNPACK [1, kh, kw, C].
      std::vector<float> f(w.values.size());
      for (size_t c = 0; c < o; ++c)
        for (size_t i = 0; i < kh * kw; ++i) f[i * o + c] = w.values[c * kh * kw + i];
      const uint32_t filter = constant(std::move(f), {1, kh, kw, o});
      check_xnn(xnn_define_depthwise_convolution_2d(sg_, pads[0], pads[3], pads[2], pads[1], kh, kw, strides[0],
                                                    strides[1], dilations[0], dilations[1], 1, in_c, -kInf, kInf,
                                                    x.id, filter, bias, output(n, {1, oh, ow, o}, true).id, 0),
                "depthwise convolution");
    } else if (group == 1 && gi == in_c) {
      // ONNX [O, I, kh, kw] -> XNNPACK [O, kh, kw, I].
      std::vector<float> f(w.values.size());
      for (size_t oc = 0; oc < o; ++oc)
        for (size_t ic = 0; ic < gi; ++ic)
          for (size_t i = 0; i < kh * kw; ++i) f[(oc * kh * kw + i) * gi + ic] = w.values[(oc * gi + ic) * kh * kw + i];
      const uint32_t filter = constant(std::move(f), {o, kh, kw, gi});
      check_xnn(xnn_define_convolution_2d(sg_, pads[0], pads[3], pads[2], pads[1], kh, kw, strides[0], strides[1],
                                          dilations[0], dilations[1], 1, gi, o, -kInf, kInf, x.id, filter, bias,
                                          output(n, {1, oh, ow, o}, true).id, 0),
                "convolution");
    } else {
      throw Error(fmt::format("XNNPACK: grouped convolution with {} groups is not supported", group));
    }
  }

  void max_pool(const onnx::NodeProto& n) {
    check_explicit_pads(n);
    const Value x = map_input(n);
    const auto k = ints_attr(n, "kernel_shape", {}), strides = ints_attr(n, "strides", {1, 1});
    const auto pads = ints_attr(n, "pads", {0, 0, 0, 0}), dilations = ints_attr(n, "dilations", {1, 1});
    if (k.size() != 2 || strides.size() != 2 || pads.size() != 4 || dilations != std::vector<int64_t>{1, 1} ||
        int_attr(n, "ceil_mode", 0) != 0 || int_attr(n, "storage_order", 0) != 0 || n.output_size() != 1 ||
        std::any_of(k.begin(), k.end(), [](int64_t v) { return v < 1 || v > 64; }) ||
        std::any_of(strides.begin(), strides.end(), [](int64_t v) { return v < 1 || v > 64; }) ||
        std::any_of(pads.begin(), pads.end(), [](int64_t v) { return v < 0 || v > 64; }))
      throw Error("XNNPACK: MaxPool '" + n.output(0) + "' has attributes that are not supported");
    if (x.dims[1] + pads[0] + pads[2] < static_cast<size_t>(k[0]) ||
        x.dims[2] + pads[1] + pads[3] < static_cast<size_t>(k[1]))
      throw Error("XNNPACK: MaxPool '" + n.output(0) + "' window is larger than its input");
    const size_t oh = (x.dims[1] + pads[0] + pads[2] - k[0]) / strides[0] + 1;
    const size_t ow = (x.dims[2] + pads[1] + pads[3] - k[1]) / strides[1] + 1;
    check_xnn(xnn_define_max_pooling_2d(sg_, pads[0], pads[3], pads[2], pads[1], k[0], k[1], strides[0], strides[1], 1, 1,
                                        -kInf, kInf, x.id, output(n, {1, oh, ow, x.dims[3]}, true).id, 0),
              "max pooling");
  }

  // Nearest, asymmetric, floor, by an integer factor f: out(y, x) = in(y / f, x / f), which is
  // a depthwise deconvolution with an f x f kernel of ones and stride f.
  void resize(const onnx::NodeProto& n) {
    const Value x = map_input(n);
    if (string_attr(n, "mode", "nearest") != "nearest" ||
        string_attr(n, "coordinate_transformation_mode", "half_pixel") != "asymmetric" ||
        string_attr(n, "nearest_mode", "round_prefer_floor") != "floor" || n.input_size() < 3 || n.input_size() > 3)
      throw Error("XNNPACK: only Resize nearest/asymmetric/floor by scales is supported ('" + n.output(0) + "')");
    const Tensor<float> scales = init(n, 2);
    const auto& s = scales.values;
    if (s.size() != 4 || s[0] != 1 || s[1] != 1 || s[2] != s[3] || s[2] < 1 || s[2] > 16 ||
        s[2] != static_cast<float>(static_cast<int>(s[2])))
      throw Error("XNNPACK: Resize '" + n.output(0) + "' scales are not (1, 1, f, f) with an integer f");
    const size_t f = static_cast<size_t>(s[2]), c = x.dims[3];
    const uint32_t ones = constant(std::vector<float>(c * f * f, 1.0f), {c, f, f, 1});
    check_xnn(xnn_define_deconvolution_2d(sg_, 0, 0, 0, 0, 0, 0, f, f, f, f, 1, 1, c, 1, 1, -kInf, kInf, x.id, ones,
                                          XNN_INVALID_VALUE_ID,
                                          output(n, {1, x.dims[1] * f, x.dims[2] * f, c}, true).id, 0),
              "nearest resize");
  }

  void reshape(const onnx::NodeProto& n) {
    const Value x = input(n, 0);
    if (x.spatial) throw Error("XNNPACK: Reshape of an image map (only after Transpose (0, 2, 3, 1))");
    const Tensor<int64_t> shape = init<int64_t>(n, 1);
    std::vector<size_t> dims;
    int infer = -1;
    for (size_t i = 0; i < shape.values.size(); ++i) {
      const int64_t v = shape.values[i];
      if (v == 0 && i < x.dims.size())
        dims.push_back(x.dims[i]);
      else if (v == -1 && infer < 0)
        infer = static_cast<int>(i), dims.push_back(1);
      else if (v >= 1)
        dims.push_back(static_cast<size_t>(v));
      else
        throw Error("XNNPACK: Reshape '" + n.output(0) + "' has a shape that is not supported");
    }
    const size_t total = elements(x.dims), known = elements(dims);
    if (infer >= 0) {
      if (known == 0 || total % known) throw Error("XNNPACK: Reshape '" + n.output(0) + "' does not fit its input");
      dims[static_cast<size_t>(infer)] = total / known;
    }
    if (elements(dims) != total) throw Error("XNNPACK: Reshape '" + n.output(0) + "' does not fit its input");
    check_xnn(xnn_define_static_reshape(sg_, dims.size(), dims.data(), x.id, output(n, dims, false).id, 0), "reshape");
  }

  void gemm(const onnx::NodeProto& n) {
    const Value x = input(n, 0);
    const Tensor<float> w = init(n, 1), b = init(n, 2);
    if (int_attr(n, "transB", 0) != 1 || int_attr(n, "transA", 0) != 0 || w.dims.size() != 2)
      throw Error("XNNPACK: only Gemm with transB=1 is supported");
    const auto* alpha = attribute(n, "alpha");
    const auto* beta = attribute(n, "beta");
    if ((alpha && alpha->f() != 1.0f) || (beta && beta->f() != 1.0f)) throw Error("XNNPACK: Gemm with alpha/beta != 1");
    const size_t out = static_cast<size_t>(w.dims[0]), in = static_cast<size_t>(w.dims[1]);
    if (elements(x.dims) != in || b.values.size() != out) throw Error("XNNPACK: Gemm shapes do not fit its input");
    macs_ += static_cast<double>(out * in);
    const uint32_t filter = constant(w.values, {out, in}), bias = constant(b.values, {out});
    check_xnn(xnn_define_fully_connected(sg_, -kInf, kInf, x.id, filter, bias, output(n, {1, out}, false).id,
                                         XNN_FLAG_TENSORFLOW_RESHAPE_2D),
              "fully connected");
  }

  const onnx::GraphProto& graph_;
  xnn_subgraph_t sg_;
  std::vector<std::vector<float>>& constants_;
  const std::vector<std::string>& outputs_;
  std::map<std::string, const onnx::TensorProto*> inits_;
  std::map<std::string, Value> values_;
  double macs_ = 0;
};

}  // namespace

XnnpackGraphShape define_onnx_graph(const onnx::GraphProto& graph, xnn_subgraph_t subgraph,
                                    std::vector<std::vector<float>>& constants, size_t height, size_t width,
                                    const std::vector<std::string>& outputs) {
  return Definer(graph, subgraph, constants, outputs).define(height, width);
}

}  // namespace maskwatch
