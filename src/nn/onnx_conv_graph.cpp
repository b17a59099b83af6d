#include "nn/onnx_conv_graph.h"

#include <fmt/format.h>
#include <onnx/onnx_pb.h>

#include <cstring>
#include <set>

#include "util/error.h"
#include "util/files.h"

namespace maskwatch {

struct OnnxConvGraph::Node {
  std::string op, output;
  std::vector<std::string> inputs;
  std::vector<int64_t> kernel, strides{1, 1}, pads{0, 0, 0, 0}, dilations{1, 1};
  int64_t group = 1;
  std::vector<double> scales;  // Resize: per-dimension factors
};

namespace {

const onnx::AttributeProto* attribute(const onnx::NodeProto& n, const std::string& name) {
  for (const auto& a : n.attribute())
    if (a.name() == name) return &a;
  return nullptr;
}

std::vector<int64_t> ints(const onnx::NodeProto& n, const std::string& name, std::vector<int64_t> fallback) {
  const auto* a = attribute(n, name);
  if (!a) return fallback;
  return {a->ints().begin(), a->ints().end()};
}

std::string string_attr(const onnx::NodeProto& n, const std::string& name, const std::string& fallback) {
  const auto* a = attribute(n, name);
  return a ? a->s() : fallback;
}

std::vector<float> floats_of(const onnx::TensorProto& t) {
  if (t.data_type() != onnx::TensorProto::FLOAT) return {};
  int64_t count = 1;
  for (auto d : t.dims()) count *= d;
  std::vector<float> v(static_cast<size_t>(count));
  if (t.has_raw_data()) {
    if (t.raw_data().size() != v.size() * sizeof(float)) return {};
    std::memcpy(v.data(), t.raw_data().data(), t.raw_data().size());
  } else {
    if (t.float_data_size() != count) return {};
    std::copy(t.float_data().begin(), t.float_data().end(), v.begin());
  }
  return v;
}

}  // namespace

OnnxConvGraph::~OnnxConvGraph() = default;

OnnxConvGraph::OnnxConvGraph(const std::filesystem::path& model, const std::vector<std::string>& outputs)
    : path_(model), proto_(std::make_unique<onnx::ModelProto>()), outputs_(outputs) {
  const auto bytes = read_file_bytes(model, "face model");
  if (!proto_->ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    throw Error(fmt::format("face model {} does not parse as ONNX", model.string()));
  const auto& g = proto_->graph();
  std::map<std::string, const onnx::TensorProto*> inits;
  for (const auto& t : g.initializer()) inits[t.name()] = &t;
  for (const auto& i : g.input())
    if (!inits.count(i.name())) input_ = i.name();

  // The nodes the outputs need, in graph order (ONNX lists nodes topologically).
  std::map<std::string, int> producer;
  for (int i = 0; i < g.node_size(); ++i)
    for (const auto& o : g.node(i).output()) producer[o] = i;
  // Each named output is read before the layout ops and the final sigmoid that follow its
  // last convolution: the caller gets NCHW maps (logits, for a sigmoid output).
  for (auto& o : outputs_) {
    for (auto it = producer.find(o); it != producer.end(); it = producer.find(o)) {
      const auto& op = g.node(it->second).op_type();
      if (op != "Sigmoid" && op != "Reshape" && op != "Transpose") break;
      o = g.node(it->second).input(0);
    }
  }
  std::set<int> needed;
  std::vector<std::string> todo(outputs_.begin(), outputs_.end());
  while (!todo.empty()) {
    const std::string v = todo.back();
    todo.pop_back();
    if (v == input_ || inits.count(v)) continue;
    const auto it = producer.find(v);
    if (it == producer.end()) throw Error(fmt::format("face model {}: no node makes '{}'", model.string(), v));
    if (!needed.insert(it->second).second) continue;
    for (const auto& in : g.node(it->second).input()) todo.push_back(in);
  }

  for (int i : needed) {
    const auto& n = g.node(i);
    const auto unsupported = [&](const std::string& why) {
      return Error(fmt::format("face model {}: node {} ({}) {}: only plain Conv, Relu, MaxPool, nearest Resize and "
                               "Add graphs can be fine-tuned",
                               model.string(), n.name(), n.op_type(), why));
    };
    Node node;
    node.op = n.op_type();
    node.output = n.output(0);
    node.inputs.assign(n.input().begin(), n.input().end());
    if (node.op == "Conv") {
      if (string_attr(n, "auto_pad", "NOTSET") != "NOTSET") throw unsupported("uses auto_pad");
      node.kernel = ints(n, "kernel_shape", {});
      node.strides = ints(n, "strides", {1, 1});
      node.pads = ints(n, "pads", {0, 0, 0, 0});
      node.dilations = ints(n, "dilations", {1, 1});
      const auto* grp = attribute(n, "group");
      node.group = grp ? grp->i() : 1;
      if (node.pads.size() != 4 || node.pads[0] != node.pads[2] || node.pads[1] != node.pads[3])
        throw unsupported("has asymmetric padding");
      for (size_t k = 1; k < node.inputs.size(); ++k) {
        const auto it = inits.find(node.inputs[k]);
        if (it == inits.end()) throw unsupported("takes weights that are not initializers");
        auto w = floats_of(*it->second);
        if (w.empty()) throw unsupported("has weights that are not float32");
        std::vector<int64_t> dims(it->second->dims().begin(), it->second->dims().end());
        params_[node.inputs[k]] = torch::from_blob(w.data(), dims, torch::kFloat32).clone().set_requires_grad(true);
      }
    } else if (node.op == "MaxPool") {
      node.kernel = ints(n, "kernel_shape", {});
      node.strides = ints(n, "strides", {1, 1});
      node.pads = ints(n, "pads", {0, 0, 0, 0});
      const auto* ceil = attribute(n, "ceil_mode");
      if (ceil && ceil->i() != 0) throw unsupported("uses ceil_mode");
      if (node.pads.size() != 4 || node.pads[0] != node.pads[2] || node.pads[1] != node.pads[3])
        throw unsupported("has asymmetric padding");
    } else if (node.op == "Resize") {
      if (string_attr(n, "mode", "nearest") != "nearest") throw unsupported("is not nearest-neighbour");
      if (string_attr(n, "coordinate_transformation_mode", "half_pixel") != "asymmetric" ||
          string_attr(n, "nearest_mode", "round_prefer_floor") != "floor")
        throw unsupported("is not an asymmetric floor resize");
      const auto it = node.inputs.size() > 2 ? inits.find(node.inputs[2]) : inits.end();
      const auto s = it == inits.end() ? std::vector<float>{} : floats_of(*it->second);
      if (s.size() != 4 || s[0] != 1 || s[1] != 1) throw unsupported("has no constant [1, 1, h, w] scales");
      node.scales = {s[2], s[3]};
    } else if (node.op != "Relu" && node.op != "Add") {
      throw unsupported("is not supported");
    }
    nodes_.push_back(std::move(node));
  }
  if (input_.empty()) throw Error(fmt::format("face model {} has no graph input", model.string()));
}

std::vector<torch::Tensor> OnnxConvGraph::forward(const torch::Tensor& x) const {
  std::map<std::string, torch::Tensor> v;
  v[input_] = x;
  for (const auto& n : nodes_) {
    const torch::Tensor& a = v.at(n.inputs[0]);
    torch::Tensor y;
    if (n.op == "Conv") {
      const torch::Tensor bias = n.inputs.size() > 2 ? params_.at(n.inputs[2]) : torch::Tensor();
      y = torch::conv2d(a, params_.at(n.inputs[1]), bias, n.strides, {n.pads[0], n.pads[1]}, n.dilations, n.group);
    } else if (n.op == "Relu") {
      y = torch::relu(a);
    } else if (n.op == "MaxPool") {
      y = torch::max_pool2d(a, n.kernel, n.strides, {n.pads[0], n.pads[1]});
    } else if (n.op == "Resize") {
      // Asymmetric floor nearest is what PyTorch's "nearest" does.
      y = torch::upsample_nearest2d(a, c10::nullopt, std::vector<double>{n.scales[0], n.scales[1]});
    } else {  // Add
      y = a + v.at(n.inputs[1]);
    }
    v[n.output] = y;
  }
  std::vector<torch::Tensor> out;
  for (const auto& o : outputs_) out.push_back(v.at(o));
  return out;
}

std::vector<torch::Tensor> OnnxConvGraph::trainable() const {
  std::vector<torch::Tensor> t;
  for (const auto& [name, p] : params_)
    if (p.requires_grad()) t.push_back(p);
  return t;
}

int OnnxConvGraph::freeze(const std::string& prefix) {
  int n = 0;
  for (auto& [name, p] : params_)
    if (name.rfind(prefix, 0) == 0) p.set_requires_grad(false), ++n;
  return n;
}

int OnnxConvGraph::freeze_before(const std::string& prefix) {
  int n = 0;
  for (const auto& node : nodes_) {
    if (node.op != "Conv") continue;
    for (size_t k = 1; k < node.inputs.size(); ++k)
      if (node.inputs[k].rfind(prefix, 0) == 0) return n;
    for (size_t k = 1; k < node.inputs.size(); ++k) params_.at(node.inputs[k]).set_requires_grad(false), ++n;
  }
  return n;
}

void OnnxConvGraph::save_onnx(const std::filesystem::path& path,
                              const std::map<std::string, std::string>& metadata) const {
  onnx::ModelProto out = *proto_;
  for (const auto& [key, value] : metadata) {
    onnx::StringStringEntryProto* entry = nullptr;
    for (auto& p : *out.mutable_metadata_props())
      if (p.key() == key) entry = &p;
    if (!entry) entry = out.add_metadata_props(), entry->set_key(key);
    entry->set_value(value);
  }
  for (auto& t : *out.mutable_graph()->mutable_initializer()) {
    const auto it = params_.find(t.name());
    if (it == params_.end()) continue;
    const torch::Tensor w = it->second.detach().contiguous();
    t.clear_float_data();
    t.set_raw_data(std::string(reinterpret_cast<const char*>(w.data_ptr<float>()), w.numel() * sizeof(float)));
  }
  std::string bytes;
  if (!out.SerializeToString(&bytes)) throw Error("cannot serialise the face model for " + path.string());
  write_file_atomic(path, bytes);
}

}  // namespace maskwatch
