#include "nn/onnx_export.h"

#include <fmt/format.h>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include "util/error.h"
#include "util/files.h"
#include "util/sha256.h"

namespace maskwatch {
namespace {

constexpr int kOpset = 10;     // Clip takes min/max as attributes up to opset 10
constexpr int kIrVersion = 5;  // the IR version that goes with opset 10

// Builds one ONNX graph node by node; names values v0, v1, ...
class GraphBuilder {
 public:
  explicit GraphBuilder(const OnnxExportOptions& o) : opts_(o) {
    model_.set_ir_version(kIrVersion);
    model_.set_producer_name("maskwatch");
    model_.set_producer_version("0.1");
    model_.add_opset_import()->set_version(kOpset);  // default domain
    graph_ = model_.mutable_graph();
    graph_->set_name("maskwatch");
    add_value_info(graph_->add_input(), "input", {3, o.input_size, o.input_size});
  }

  std::string conv(const std::string& x, const ConvBNImpl& c, int in_size) {
    const auto [w, b] = c.folded();
    const auto pad_hw = same_padding(in_size, c.kernel, c.stride);
    auto* n = node("Conv", {x, initializer(w), initializer(b)});
    ints(n, "kernel_shape", {c.kernel, c.kernel});
    ints(n, "strides", {c.stride, c.stride});
    // TF SAME: [top, left, bottom, right] = [before, before, after, after].
    ints(n, "pads", {pad_hw.first, pad_hw.first, pad_hw.second, pad_hw.second});
    ints(n, "dilations", {1, 1});
    ints(n, "group", {}, c.groups);
    const std::string y = n->output(0);
    return c.relu6 ? clip6(y) : y;
  }
  std::string clip6(const std::string& x) {
    auto* n = node("Clip", {x});
    floats(n, "min", 0.0f);
    floats(n, "max", 6.0f);
    return n->output(0);
  }
  std::string add(const std::string& a, const std::string& b) { return node("Add", {a, b})->output(0); }
  std::string global_pool_flatten(const std::string& x) {
    const auto pooled = node("GlobalAveragePool", {x})->output(0);
    auto* f = node("Flatten", {pooled});
    ints(f, "axis", {}, 1);
    return f->output(0);
  }
  std::string gemm(const std::string& x, torch::nn::Linear& fc) {
    auto* n = node("Gemm", {x, initializer(fc->weight), initializer(fc->bias)});
    ints(n, "transB", {}, 1);
    return n->output(0);
  }
  std::string relu(const std::string& x) { return node("Relu", {x})->output(0); }
  std::string softmax(const std::string& x) {
    auto* n = node("Softmax", {x});
    ints(n, "axis", {}, 1);
    return n->output(0);
  }

  std::string backbone(MobileNetV2& net, int last_stage) {
    std::string x = "input";
    int size = opts_.input_size;
    for (int s = 0; s <= last_stage; ++s) {
      if (s == 0 || s == kNumStages - 1) {
        auto& c = s == 0 ? *net->stem : *net->last_conv;
        x = conv(x, c, size);
        size = (size + c.stride - 1) / c.stride;
        continue;
      }
      auto& block = *net->blocks[static_cast<size_t>(s - 1)];
      std::string y = block.expand ? conv(x, *block.expand, size) : x;
      y = conv(y, *block.depthwise, size);
      size = (size + block.spec.stride - 1) / block.spec.stride;
      y = conv(y, *block.project, size);
      x = block.residual ? add(x, y) : y;
    }
    return x;
  }

  std::string finish(const std::string& out_value, std::vector<int64_t> out_dims) {
    // Rename the last value to "output" so users see a stable name.
    for (auto& n : *graph_->mutable_node())
      for (auto& o : *n.mutable_output())
        if (o == out_value) o = "output";
    add_value_info(graph_->add_output(), "output", std::move(out_dims));
    try {
      onnx::checker::check_model(model_);
    } catch (const std::exception& e) {
      throw Error(std::string("exported ONNX model failed the ONNX checker: ") + e.what());
    }
    std::string bytes;
    if (!model_.SerializeToString(&bytes)) throw Error("cannot serialize the ONNX model");
    return bytes;
  }

 private:
  onnx::NodeProto* node(const std::string& op, const std::vector<std::string>& inputs) {
    auto* n = graph_->add_node();
    n->set_op_type(op);
    n->set_name(fmt::format("{}_{}", op, graph_->node_size()));
    for (const auto& i : inputs) n->add_input(i);
    n->add_output(fmt::format("v{}", next_value_++));
    return n;
  }
  static void ints(onnx::NodeProto* n, const std::string& name, std::vector<int64_t> values, int64_t single = 0) {
    auto* a = n->add_attribute();
    a->set_name(name);
    if (values.empty()) {
      a->set_type(onnx::AttributeProto::INT);
      a->set_i(single);
    } else {
      a->set_type(onnx::AttributeProto::INTS);
      for (auto v : values) a->add_ints(v);
    }
  }
  static void floats(onnx::NodeProto* n, const std::string& name, float value) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(value);
  }
  std::string initializer(const torch::Tensor& value) {
    const auto t = value.detach().to(torch::kFloat32).contiguous();
    auto* init = graph_->add_initializer();
    const std::string name = fmt::format("w{}", graph_->initializer_size());
    init->set_name(name);
    for (auto d : t.sizes()) init->add_dims(d);
    init->set_data_type(onnx::TensorProto::FLOAT);
    init->set_raw_data(t.data_ptr<float>(), static_cast<size_t>(t.numel()) * sizeof(float));
    return name;
  }
  static void add_value_info(onnx::ValueInfoProto* v, const std::string& name, std::vector<int64_t> dims) {
    v->set_name(name);
    auto* tt = v->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(onnx::TensorProto::FLOAT);
    auto* shape = tt->mutable_shape();
    shape->add_dim()->set_dim_param("batch");
    for (auto d : dims) shape->add_dim()->set_dim_value(d);
  }

  OnnxExportOptions opts_;
  onnx::ModelProto model_;
  onnx::GraphProto* graph_;
  int next_value_ = 0;
};

}  // namespace

std::string export_classifier_onnx(MaskNet& net, const OnnxExportOptions& options) {
  check_input_size(options.input_size);
  torch::NoGradGuard no_grad;
  GraphBuilder g(options);
  std::string x = g.global_pool_flatten(g.backbone(net->backbone, kNumStages - 1));
  x = g.gemm(g.relu(g.gemm(x, net->fc1)), net->fc2);  // dropout is the identity at inference
  return g.finish(g.softmax(x), {net->options.num_classes});
}

std::string export_backbone_onnx(MobileNetV2& backbone, int last_stage, bool pool, const OnnxExportOptions& options) {
  check_input_size(options.input_size);
  if (last_stage < 0 || last_stage >= kNumStages) throw Error(fmt::format("no backbone stage {}", last_stage));
  torch::NoGradGuard no_grad;
  GraphBuilder g(options);
  std::string x = g.backbone(backbone, last_stage);
  const int c = stage_channels(last_stage);
  if (pool) return g.finish(g.global_pool_flatten(x), {c});
  const int s = stage_output_size(last_stage, options.input_size);
  return g.finish(x, {c, s, s});
}

void save_model(const std::filesystem::path& onnx_path, MaskNet& net, ModelMeta meta,
                const OnnxExportOptions& options) {
  if (static_cast<int>(meta.classes.size()) != net->options.num_classes)
    throw Error(fmt::format("{} class names for a {}-class model", meta.classes.size(), net->options.num_classes));
  const std::string bytes = export_classifier_onnx(net, options);
  meta.input_size = options.input_size;
  meta.onnx_sha256 = sha256_hex(bytes);
  write_file_atomic(onnx_path, bytes);
  meta.save(sidecar_path(onnx_path));
}

}  // namespace maskwatch
