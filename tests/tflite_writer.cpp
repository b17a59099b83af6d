#include "tflite_writer.h"

#include <flatbuffers/flatbuffers.h>
#include <opencv2/core.hpp>

#include <cmath>
#include <cstring>

namespace maskwatch::test {
namespace {
namespace fb = flatbuffers;
constexpr fb::voffset_t slot(int n) { return static_cast<fb::voffset_t>(4 + 2 * n); }

std::vector<float> to_vec(const torch::Tensor& t) {
  auto c = t.detach().contiguous().to(torch::kFloat32);
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}
}  // namespace

std::vector<TfliteLayer> layers_of(MobileNetV2& net) {
  std::vector<TfliteLayer> out;
  for (auto& [name, conv] : net->convs_in_order()) {
    auto [w, b] = conv->folded();
    const bool dw = conv->groups > 1;
    // OIHW -> OHWI; depthwise C1HW -> 1HWC
    auto file_w = dw ? w.permute({1, 2, 3, 0}) : w.permute({0, 2, 3, 1});
    TfliteLayer l;
    l.op = dw ? 4 : 3;
    l.name = name + "/weights";
    for (auto d : file_w.sizes()) l.shape.push_back(static_cast<int32_t>(d));
    l.weight = to_vec(file_w);
    l.bias = to_vec(b);
    l.stride = conv->stride;
    l.activation = conv->relu6 ? 3 : 0;
    out.push_back(std::move(l));
  }
  if (net->imagenet_top) {
    TfliteLayer l;
    l.op = 9;
    l.name = "Logits/weights";
    l.shape = {static_cast<int32_t>(net->imagenet_top->weight.size(0)), kFeatureChannels};
    l.weight = to_vec(net->imagenet_top->weight);
    l.bias = to_vec(net->imagenet_top->bias);
    out.push_back(std::move(l));
  }
  return out;
}

std::string write_tflite(const std::vector<TfliteLayer>& layers, WeightEncoding enc) {
  fb::FlatBufferBuilder b;
  std::vector<fb::Offset<void>> buffers, tensors, ops;
  auto add_buffer = [&](const void* data, size_t size) {
    fb::Offset<fb::Vector<uint8_t>> vec;
    if (size) {
      b.ForceVectorAlignment(size, 1, 16);
      vec = b.CreateVector(static_cast<const uint8_t*>(data), size);
    }
    const auto start = b.StartTable();
    if (size) b.AddOffset(slot(0), vec);
    buffers.push_back(fb::Offset<void>(b.EndTable(start)));
    return static_cast<uint32_t>(buffers.size() - 1);
  };
  auto add_tensor = [&](const std::string& name, const std::vector<int32_t>& shape, int8_t type, uint32_t buffer,
                        const std::vector<float>& scale, const std::vector<int64_t>& zp, int qdim) {
    auto shape_v = b.CreateVector(shape);
    auto name_s = b.CreateString(name);
    fb::Offset<void> quant;
    if (!scale.empty()) {
      auto sv = b.CreateVector(scale);
      auto zv = b.CreateVector(zp);
      const auto qs = b.StartTable();
      b.AddOffset(slot(2), sv);
      b.AddOffset(slot(3), zv);
      b.AddElement<int32_t>(slot(6), qdim, 0);
      quant = fb::Offset<void>(b.EndTable(qs));
    }
    const auto start = b.StartTable();
    b.AddOffset(slot(0), shape_v);
    b.AddElement<int8_t>(slot(1), type, 0);
    b.AddElement<uint32_t>(slot(2), buffer, 0);
    b.AddOffset(slot(3), name_s);
    if (!scale.empty()) b.AddOffset(slot(4), quant);
    tensors.push_back(fb::Offset<void>(b.EndTable(start)));
    return static_cast<int32_t>(tensors.size() - 1);
  };

  add_buffer(nullptr, 0);  // buffer 0: empty by convention
  int32_t x = add_tensor("input", {1, 224, 224, 3}, 0, 0, {}, {}, 0);
  const int32_t graph_input = x;
  for (const auto& l : layers) {
    const int qdim = l.op == 4 ? 3 : 0;
    int32_t w;
    if (enc == WeightEncoding::Float32) {
      w = add_tensor(l.name, l.shape, 0, add_buffer(l.weight.data(), l.weight.size() * 4), {}, {}, 0);
    } else if (enc == WeightEncoding::Float16) {
      std::vector<uint16_t> h(l.weight.size());
      for (size_t i = 0; i < h.size(); ++i) h[i] = cv::float16_t(l.weight[i]).bits();
      w = add_tensor(l.name, l.shape, 1, add_buffer(h.data(), h.size() * 2), {}, {}, 0);
    } else {  // symmetric int8 per channel along qdim
      const size_t channels = static_cast<size_t>(l.shape[static_cast<size_t>(qdim)]);
      size_t inner = 1;
      for (size_t d = static_cast<size_t>(qdim) + 1; d < l.shape.size(); ++d) inner *= static_cast<size_t>(l.shape[d]);
      std::vector<float> scale(channels, 1e-8f);
      for (size_t i = 0; i < l.weight.size(); ++i) {
        auto& s = scale[(i / inner) % channels];
        s = std::max(s, std::abs(l.weight[i]) / 127.0f);
      }
      std::vector<int8_t> q(l.weight.size());
      for (size_t i = 0; i < q.size(); ++i)
        q[i] = static_cast<int8_t>(std::lround(l.weight[i] / scale[(i / inner) % channels]));
      w = add_tensor(l.name, l.shape, 9, add_buffer(q.data(), q.size()), scale, std::vector<int64_t>(channels, 0),
                     qdim);
    }
    const int32_t bias = add_tensor(l.name + "_bias", {static_cast<int32_t>(l.bias.size())}, 0,
                                    add_buffer(l.bias.data(), l.bias.size() * 4), {}, {}, 0);
    const int32_t y = add_tensor(l.name + "_out", {}, 0, 0, {}, {}, 0);
    fb::Offset<void> options;
    uint8_t options_type = 0;
    if (l.op == 3 || l.op == 4) {
      const auto s = b.StartTable();
      b.AddElement<int8_t>(slot(0), 0, -1);  // SAME (force write)
      b.AddElement<int32_t>(slot(1), l.stride, 0);
      b.AddElement<int32_t>(slot(2), l.stride, 0);
      if (l.op == 3)
        b.AddElement<int8_t>(slot(3), static_cast<int8_t>(l.activation), 0);
      else {
        b.AddElement<int32_t>(slot(3), 1, 0);
        b.AddElement<int8_t>(slot(4), static_cast<int8_t>(l.activation), 0);
      }
      options = fb::Offset<void>(b.EndTable(s));
      options_type = l.op == 3 ? 1 : 2;
    }
    auto in_v = b.CreateVector(std::vector<int32_t>{x, w, bias});
    auto out_v = b.CreateVector(std::vector<int32_t>{y});
    const auto s = b.StartTable();
    b.AddElement<uint32_t>(slot(0), l.op == 3 ? 0u : l.op == 4 ? 1u : 2u, 0xffffffffu);
    b.AddOffset(slot(1), in_v);
    b.AddOffset(slot(2), out_v);
    if (options_type) {
      b.AddElement<uint8_t>(slot(3), options_type, 0);
      b.AddOffset(slot(4), options);
    }
    ops.push_back(fb::Offset<void>(b.EndTable(s)));
    x = y;
  }
  auto tensors_v = b.CreateVector(tensors);
  auto ops_v = b.CreateVector(ops);
  auto gin = b.CreateVector(std::vector<int32_t>{graph_input});
  auto gout = b.CreateVector(std::vector<int32_t>{x});
  const auto gs = b.StartTable();
  b.AddOffset(slot(0), tensors_v);
  b.AddOffset(slot(1), gin);
  b.AddOffset(slot(2), gout);
  b.AddOffset(slot(3), ops_v);
  const auto graph = fb::Offset<void>(b.EndTable(gs));

  std::vector<fb::Offset<void>> codes;
  for (int32_t code : {3, 4, 9}) {
    const auto cs = b.StartTable();
    b.AddElement<int8_t>(slot(0), static_cast<int8_t>(code), -1);
    b.AddElement<int32_t>(slot(2), 1, 0);
    b.AddElement<int32_t>(slot(3), code, -1);
    codes.push_back(fb::Offset<void>(b.EndTable(cs)));
  }
  auto codes_v = b.CreateVector(codes);
  auto graphs_v = b.CreateVector(std::vector<fb::Offset<void>>{graph});
  auto buffers_v = b.CreateVector(buffers);
  const auto ms = b.StartTable();
  b.AddElement<uint32_t>(slot(0), 3, 0);
  b.AddOffset(slot(1), codes_v);
  b.AddOffset(slot(2), graphs_v);
  b.AddOffset(slot(4), buffers_v);
  b.Finish(fb::Offset<void>(b.EndTable(ms)), "TFL3");
  return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
}

}  // namespace maskwatch::test
