#include "nn/tflite_import.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "model/tflite_reader.h"
#include "util/error.h"
#include "util/sha256.h"

namespace maskwatch {
namespace {

using tflite::Op;

std::string op_name(Op op) {
  switch (op) {
    case Op::Conv2D: return "CONV_2D";
    case Op::DepthwiseConv2D: return "DEPTHWISE_CONV_2D";
    case Op::FullyConnected: return "FULLY_CONNECTED";
    default: return "another operator";
  }
}

std::string describe_format(const tflite::Tensor& t) {
  switch (t.type) {
    case tflite::TensorType::Float32: return "float32";
    case tflite::TensorType::Float16: return "float16";
    case tflite::TensorType::UInt8: return t.scale.size() > 1 ? "uint8 per-channel" : "uint8 per-tensor";
    case tflite::TensorType::Int8: return t.scale.size() > 1 ? "int8 per-channel" : "int8 per-tensor";
    default: return "unknown";
  }
}

torch::Tensor tensor_from(const tflite::Model& m, int index, const std::vector<int64_t>& shape) {
  auto values = m.dequantize(index);
  return torch::from_blob(values.data(), shape, torch::kFloat32).clone();
}

// Bias of a conv/FC op (input 2), or zeros when the op has none.
torch::Tensor bias_of(const tflite::Model& m, const tflite::Operator& op, int64_t channels, const std::string& slot) {
  if (op.inputs.size() < 3 || op.inputs[2] < 0) return torch::zeros({channels});
  const auto& t = m.tensors[static_cast<size_t>(op.inputs[2])];
  if (t.shape != std::vector<int32_t>{static_cast<int32_t>(channels)})
    throw Error(fmt::format("tensor '{}' has shape {} where MobileNetV2 needs {} ({} bias)", t.name, t.shape_string(),
                            channels, slot));
  return tensor_from(m, op.inputs[2], {channels});
}

const tflite::Tensor& weight_of(const tflite::Model& m, const tflite::Operator& op, size_t op_index) {
  if (op.inputs.size() < 2 || op.inputs[1] < 0)
    throw Error(fmt::format("operator {} ({}) has no weight tensor", op_index, op_name(op.op)));
  const auto& t = m.tensors[static_cast<size_t>(op.inputs[1])];
  if (!t.has_data) throw Error(fmt::format("tensor '{}' is not a constant weight", t.name));
  return t;
}

// Indices of the conv / depthwise / fully-connected ops, in execution order.
std::vector<size_t> layer_ops_of(const tflite::Model& m) {
  std::vector<size_t> out;
  for (size_t i = 0; i < m.operators.size(); ++i) {
    const Op op = m.operators[i].op;
    if (op == Op::Conv2D || op == Op::DepthwiseConv2D || op == Op::FullyConnected) out.push_back(i);
  }
  return out;
}

// Says when a backbone is none of the official files (its weights are still used as they are:
// a user's own MobileNetV2 is allowed).
void check_official(const tflite::Model& m, const std::string& origin, TfliteImportReport* report) {
  report->sha256 = sha256_hex(m.bytes);
  for (const auto& known : kOfficialBackbones)
    if (report->sha256 == known.sha256) report->official_name = known.name;
  if (report->official_name.empty())
    spdlog::warn("backbone {} is not an official MobileNetV2 file (sha256 {}...): its weights are used as they are "
                 "(`maskwatch imagenet --backbone FILE` checks them)",
                 origin, report->sha256.substr(0, 12));
}

TfliteImportReport import_model(const tflite::Model& m, const std::filesystem::path& file, MobileNetV2& net) {
  TfliteImportReport report;
  torch::NoGradGuard no_grad;
  const std::vector<size_t> layer_ops = layer_ops_of(m);

  auto slots = net->convs_in_order();
  for (size_t s = 0; s < slots.size(); ++s) {
    auto& [slot, conv] = slots[s];
    const bool depthwise = conv->groups > 1;
    if (s >= layer_ops.size())
      throw Error(fmt::format("{}: only {} convolutions, MobileNetV2 needs {} (first missing: {})", file.string(),
                              layer_ops.size(), slots.size(), slot));
    const auto& op = m.operators[layer_ops[s]];
    const auto& w = weight_of(m, op, layer_ops[s]);
    const Op want = depthwise ? Op::DepthwiseConv2D : Op::Conv2D;
    if (op.op != want)
      throw Error(fmt::format("tensor '{}' belongs to a {} where MobileNetV2 has a {} ({})", w.name, op_name(op.op),
                              op_name(want), slot));
    const int32_t k = conv->kernel, out = conv->out_channels, in = conv->in_channels;
    const std::vector<int32_t> want_shape =
        depthwise ? std::vector<int32_t>{1, k, k, out} : std::vector<int32_t>{out, k, k, in};
    if (w.shape != want_shape)
      throw Error(fmt::format("tensor '{}' has shape {} where MobileNetV2 needs {} ({})", w.name, w.shape_string(),
                              fmt::join(want_shape, "x"), slot));
    if (op.stride_h != conv->stride || op.stride_w != conv->stride)
      throw Error(fmt::format("tensor '{}' is used with stride {}x{} where MobileNetV2 needs {} ({})", w.name,
                              op.stride_h, op.stride_w, conv->stride, slot));
    if (k > 1 && op.padding != tflite::Padding::Same)
      throw Error(
          fmt::format("tensor '{}' is used with VALID padding where MobileNetV2 needs SAME ({})", w.name, slot));
    const auto want_act = conv->relu6 ? tflite::Activation::Relu6 : tflite::Activation::None;
    if (op.activation != want_act)
      throw Error(fmt::format("tensor '{}' is followed by activation {} where MobileNetV2 needs {} ({})", w.name,
                              static_cast<int>(op.activation), static_cast<int>(want_act), slot));

    torch::Tensor weight = tensor_from(m, op.inputs[1], {w.shape[0], w.shape[1], w.shape[2], w.shape[3]});
    // TFLite conv weights are OHWI, depthwise 1HWC; LibTorch wants OIHW / C1HW.
    weight = depthwise ? weight.permute({3, 0, 1, 2}) : weight.permute({0, 3, 1, 2});
    conv->set_folded(weight.contiguous(), bias_of(m, op, out, slot));
    if (s == 0) report.weight_format = describe_format(w);
    ++report.convs;
  }

  // The ImageNet classifier: a 1x1 CONV_2D (TF1 file) or FULLY_CONNECTED (Keras file) from 1280.
  if (layer_ops.size() > slots.size()) {
    const auto& op = m.operators[layer_ops[slots.size()]];
    const auto& w = weight_of(m, op, layer_ops[slots.size()]);
    const bool conv_top = op.op == Op::Conv2D && w.shape.size() == 4 && w.shape[1] == 1 && w.shape[2] == 1 &&
                          w.shape[3] == kFeatureChannels;
    const bool fc_top = op.op == Op::FullyConnected && w.shape.size() == 2 && w.shape[1] == kFeatureChannels;
    if (!conv_top && !fc_top)
      throw Error(fmt::format("tensor '{}' has shape {} where MobileNetV2's classifier needs Kx{} or Kx1x1x{}", w.name,
                              w.shape_string(), kFeatureChannels, kFeatureChannels));
    report.top_classes = w.shape[0];
    if (net->imagenet_top) {
      const auto want = net->imagenet_top->weight.size(0);
      if (want != report.top_classes)
        throw Error(fmt::format("tensor '{}' has {} classes where {} are needed", w.name, report.top_classes, want));
      net->imagenet_top->weight.copy_(tensor_from(m, op.inputs[1], {report.top_classes, kFeatureChannels}));
      net->imagenet_top->bias.copy_(bias_of(m, op, report.top_classes, "classifier"));
    }
  } else if (net->imagenet_top) {
    throw Error(fmt::format("{}: no ImageNet classifier after the last convolution", file.string()));
  }
  return report;
}

}  // namespace

const OfficialBackbone kOfficialBackbones[2] = {
    {"mobilenet_v2_1.0_224_quant.tflite", "7aad0c74c5e3c06e5eb3c827e13304fdd68a83da6087d92ee169c24ff9fd4776"},
    {"tf2_mobilenet_v2_1.0_224_ptq.tflite", "5d3137241276e79c86d14a74fe43581398ae0e815191d3dba45495b810840e8c"},
};

TfliteImportReport import_tflite(const std::filesystem::path& file, MobileNetV2& net) {
  const tflite::Model m = tflite::read_model(file);
  auto report = import_model(m, file, net);
  check_official(m, file.string(), &report);
  return report;
}

TfliteImportReport import_tflite(const tflite::Model& model, const std::string& origin, MobileNetV2& net) {
  return import_model(model, origin, net);
}

MobileNetV2 load_imagenet_mobilenet(const std::filesystem::path& file, TfliteImportReport* report) {
  const tflite::Model m = tflite::read_model(file);
  // Size the top from the file's last layer so files with 1000 or 1001 classes both load;
  // import_model checks that layer's shape properly.
  const auto layer_ops = layer_ops_of(m);
  const auto last = layer_ops.empty() ? std::vector<int32_t>{} : m.operators[layer_ops.back()].inputs;
  int classes = 0;
  if (layer_ops.size() > static_cast<size_t>(kNumConvs) && last.size() > 1 && last[1] >= 0 &&
      !m.tensors[static_cast<size_t>(last[1])].shape.empty())
    classes = m.tensors[static_cast<size_t>(last[1])].shape[0];
  if (classes <= 0) throw Error(fmt::format("{}: no ImageNet classifier in the file", file.string()));
  MobileNetV2 net(classes);
  auto r = import_model(m, file, net);
  check_official(m, file.string(), &r);
  net->eval();
  if (report) *report = r;
  return net;
}

}  // namespace maskwatch
