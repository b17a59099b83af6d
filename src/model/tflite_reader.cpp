#include "model/tflite_reader.h"

#include <flatbuffers/flatbuffers.h>
#include <fmt/format.h>
#include <opencv2/core.hpp>

#include <cstring>

#include "util/error.h"
#include "util/files.h"

namespace maskwatch::tflite {
namespace {

namespace fb = flatbuffers;
template <typename T>
using Vec = fb::Vector<T>;
template <typename T>
using VecOf = fb::Vector<fb::Offset<T>>;

// Vtable slot of schema field number n.
constexpr fb::voffset_t slot(int n) { return static_cast<fb::voffset_t>(4 + 2 * n); }

// ---- Table accessors, field numbers from schema.fbs --------------------------------------

struct QuantizationParameters : private fb::Table {
  // min:[float] 0, max:[float] 1, scale:[float] 2, zero_point:[long] 3,
  // details (union: type 4, value 5), quantized_dimension:int 6
  const Vec<float>* scale() const { return GetPointer<const Vec<float>*>(slot(2)); }
  const Vec<int64_t>* zero_point() const { return GetPointer<const Vec<int64_t>*>(slot(3)); }
  int32_t quantized_dimension() const { return GetField<int32_t>(slot(6), 0); }
  bool Verify(fb::Verifier& v) const {
    return VerifyTableStart(v) && VerifyOffset(v, slot(0)) && v.VerifyVector(GetPointer<const Vec<float>*>(slot(0))) &&
           VerifyOffset(v, slot(1)) && v.VerifyVector(GetPointer<const Vec<float>*>(slot(1))) &&
           VerifyOffset(v, slot(2)) && v.VerifyVector(scale()) && VerifyOffset(v, slot(3)) &&
           v.VerifyVector(zero_point()) && VerifyField<int32_t>(v, slot(6), 4) && v.EndTable();
  }
};

struct TensorT : private fb::Table {
  // shape:[int] 0, type:byte 1, buffer:uint 2, name:string 3, quantization 4, ...
  const Vec<int32_t>* shape() const { return GetPointer<const Vec<int32_t>*>(slot(0)); }
  int8_t type() const { return GetField<int8_t>(slot(1), 0); }
  uint32_t buffer() const { return GetField<uint32_t>(slot(2), 0); }
  const fb::String* name() const { return GetPointer<const fb::String*>(slot(3)); }
  const QuantizationParameters* quantization() const { return GetPointer<const QuantizationParameters*>(slot(4)); }
  bool Verify(fb::Verifier& v) const {
    return VerifyTableStart(v) && VerifyOffset(v, slot(0)) && v.VerifyVector(shape()) &&
           VerifyField<int8_t>(v, slot(1), 1) && VerifyField<uint32_t>(v, slot(2), 4) && VerifyOffset(v, slot(3)) &&
           v.VerifyString(name()) && VerifyOffset(v, slot(4)) && v.VerifyTable(quantization()) && v.EndTable();
  }
};

struct Conv2DOptions : private fb::Table {
  // padding 0, stride_w 1, stride_h 2, fused_activation_function 3, dilation_w 4, dilation_h 5
  int8_t padding() const { return GetField<int8_t>(slot(0), 0); }
  int32_t stride_w() const { return GetField<int32_t>(slot(1), 0); }
  int32_t stride_h() const { return GetField<int32_t>(slot(2), 0); }
  int8_t activation() const { return GetField<int8_t>(slot(3), 0); }
  bool Verify(fb::Verifier& v) const {
    return VerifyTableStart(v) && VerifyField<int8_t>(v, slot(0), 1) && VerifyField<int32_t>(v, slot(1), 4) &&
           VerifyField<int32_t>(v, slot(2), 4) && VerifyField<int8_t>(v, slot(3), 1) && v.EndTable();
  }
};

struct DepthwiseConv2DOptions : private fb::Table {
  // padding 0, stride_w 1, stride_h 2, depth_multiplier 3, fused_activation_function 4, ...
  int8_t padding() const { return GetField<int8_t>(slot(0), 0); }
  int32_t stride_w() const { return GetField<int32_t>(slot(1), 0); }
  int32_t stride_h() const { return GetField<int32_t>(slot(2), 0); }
  int32_t depth_multiplier() const { return GetField<int32_t>(slot(3), 0); }
  int8_t activation() const { return GetField<int8_t>(slot(4), 0); }
  bool Verify(fb::Verifier& v) const {
    return VerifyTableStart(v) && VerifyField<int8_t>(v, slot(0), 1) && VerifyField<int32_t>(v, slot(1), 4) &&
           VerifyField<int32_t>(v, slot(2), 4) && VerifyField<int32_t>(v, slot(3), 4) &&
           VerifyField<int8_t>(v, slot(4), 1) && v.EndTable();
  }
};

// BuiltinOptions union member types we read.
constexpr uint8_t kConv2DOptions = 1;
constexpr uint8_t kDepthwiseConv2DOptions = 2;

struct OperatorT : private fb::Table {
  // opcode_index:uint 0, inputs:[int] 1, outputs:[int] 2, builtin_options (union: type 3, value 4)
  uint32_t opcode_index() const { return GetField<uint32_t>(slot(0), 0); }
  const Vec<int32_t>* inputs() const { return GetPointer<const Vec<int32_t>*>(slot(1)); }
  const Vec<int32_t>* outputs() const { return GetPointer<const Vec<int32_t>*>(slot(2)); }
  uint8_t options_type() const { return GetField<uint8_t>(slot(3), 0); }
  const void* options() const { return GetPointer<const void*>(slot(4)); }
  bool Verify(fb::Verifier& v) const {
    if (!(VerifyTableStart(v) && VerifyField<uint32_t>(v, slot(0), 4) && VerifyOffset(v, slot(1)) &&
          v.VerifyVector(inputs()) && VerifyOffset(v, slot(2)) && v.VerifyVector(outputs()) &&
          VerifyField<uint8_t>(v, slot(3), 1) && VerifyOffset(v, slot(4))))
      return false;
    switch (options_type()) {  // only the union members we read need a deep check
      case kConv2DOptions:
        if (!v.VerifyTable(static_cast<const Conv2DOptions*>(options()))) return false;
        break;
      case kDepthwiseConv2DOptions:
        if (!v.VerifyTable(static_cast<const DepthwiseConv2DOptions*>(options()))) return false;
        break;
      default: break;
    }
    return v.EndTable();
  }
};

struct SubGraphT : private fb::Table {
  // tensors 0, inputs 1, outputs 2, operators 3, name 4
  const VecOf<TensorT>* tensors() const { return GetPointer<const VecOf<TensorT>*>(slot(0)); }
  const Vec<int32_t>* inputs() const { return GetPointer<const Vec<int32_t>*>(slot(1)); }
  const Vec<int32_t>* outputs() const { return GetPointer<const Vec<int32_t>*>(slot(2)); }
  const VecOf<OperatorT>* operators() const { return GetPointer<const VecOf<OperatorT>*>(slot(3)); }
  bool Verify(fb::Verifier& v) const {
    return VerifyTableStart(v) && VerifyOffset(v, slot(0)) && v.VerifyVector(tensors()) &&
           v.VerifyVectorOfTables(tensors()) && VerifyOffset(v, slot(1)) && v.VerifyVector(inputs()) &&
           VerifyOffset(v, slot(2)) && v.VerifyVector(outputs()) && VerifyOffset(v, slot(3)) &&
           v.VerifyVector(operators()) && v.VerifyVectorOfTables(operators()) && v.EndTable();
  }
};

struct BufferT : private fb::Table {
  // data:[ubyte] 0, offset:ulong 1, size:ulong 2 (offset/size: data stored after the flatbuffer)
  const Vec<uint8_t>* data() const { return GetPointer<const Vec<uint8_t>*>(slot(0)); }
  uint64_t offset() const { return GetField<uint64_t>(slot(1), 0); }
  uint64_t size() const { return GetField<uint64_t>(slot(2), 0); }
  bool Verify(fb::Verifier& v) const {
    return VerifyTableStart(v) && VerifyOffset(v, slot(0)) && v.VerifyVector(data()) &&
           VerifyField<uint64_t>(v, slot(1), 8) && VerifyField<uint64_t>(v, slot(2), 8) && v.EndTable();
  }
};

struct OperatorCodeT : private fb::Table {
  // deprecated_builtin_code:byte 0, custom_code:string 1, version:int 2, builtin_code:int 3
  int8_t deprecated_builtin_code() const { return GetField<int8_t>(slot(0), 0); }
  int32_t builtin_code() const { return GetField<int32_t>(slot(3), 0); }
  bool Verify(fb::Verifier& v) const {
    return VerifyTableStart(v) && VerifyField<int8_t>(v, slot(0), 1) && VerifyOffset(v, slot(1)) &&
           v.VerifyString(GetPointer<const fb::String*>(slot(1))) && VerifyField<int32_t>(v, slot(2), 4) &&
           VerifyField<int32_t>(v, slot(3), 4) && v.EndTable();
  }
};

struct ModelT : private fb::Table {
  // version 0, operator_codes 1, subgraphs 2, description 3, buffers 4
  const VecOf<OperatorCodeT>* operator_codes() const { return GetPointer<const VecOf<OperatorCodeT>*>(slot(1)); }
  const VecOf<SubGraphT>* subgraphs() const { return GetPointer<const VecOf<SubGraphT>*>(slot(2)); }
  const VecOf<BufferT>* buffers() const { return GetPointer<const VecOf<BufferT>*>(slot(4)); }
  bool Verify(fb::Verifier& v) const {
    return VerifyTableStart(v) && VerifyField<uint32_t>(v, slot(0), 4) && VerifyOffset(v, slot(1)) &&
           v.VerifyVector(operator_codes()) && v.VerifyVectorOfTables(operator_codes()) && VerifyOffset(v, slot(2)) &&
           v.VerifyVector(subgraphs()) && v.VerifyVectorOfTables(subgraphs()) && VerifyOffset(v, slot(3)) &&
           v.VerifyString(GetPointer<const fb::String*>(slot(3))) && VerifyOffset(v, slot(4)) &&
           v.VerifyVector(buffers()) && v.VerifyVectorOfTables(buffers()) && v.EndTable();
  }
};

size_t element_size(TensorType t) {
  switch (t) {
    case TensorType::Float32:
    case TensorType::Int32: return 4;
    case TensorType::Float16: return 2;
    case TensorType::UInt8:
    case TensorType::Int8: return 1;
    case TensorType::Int64: return 8;
  }
  return 0;
}

bool known_type(int8_t t) { return t == 0 || t == 1 || t == 2 || t == 3 || t == 4 || t == 9; }

Op to_op(int32_t code) {
  switch (code) {
    case 0:
    case 1:
    case 3:
    case 4:
    case 6:
    case 9:
    case 22:
    case 25:
    case 40:
    case 114: return static_cast<Op>(code);
    default: return Op::Other;
  }
}

Activation to_activation(int8_t a) { return (a >= 0 && a <= 4) ? static_cast<Activation>(a) : Activation::Other; }

template <typename T>
std::vector<T> to_vector(const Vec<T>* v) {
  return v ? std::vector<T>(v->begin(), v->end()) : std::vector<T>{};
}

}  // namespace

int64_t Tensor::num_elements() const {
  int64_t n = 1;
  for (int32_t d : shape) n *= d;
  return n;
}

std::string Tensor::shape_string() const { return fmt::format("{}", fmt::join(shape, "x")); }

Model read_model(const std::filesystem::path& path) {
  return parse_model(read_file_bytes(path, "TFLite file"), path.string());
}

Model parse_model(std::vector<uint8_t> bytes, const std::string& origin) {
  const auto fail = [&](const std::string& why) { return Error(fmt::format("{}: {}", origin, why)); };
  if (bytes.size() < 16 || !fb::BufferHasIdentifier(bytes.data(), "TFL3"))
    throw fail("not a TensorFlow Lite file (no TFL3 identifier)");
  if (bytes.size() >= FLATBUFFERS_MAX_BUFFER_SIZE) throw fail("file too large");
  fb::Verifier verifier(bytes.data(), bytes.size());
  if (!verifier.VerifyBuffer<ModelT>("TFL3"))
    throw fail("corrupted or truncated TFLite file (flatbuffer verification failed)");

  const auto* root = fb::GetRoot<ModelT>(bytes.data());
  if (!root->subgraphs() || root->subgraphs()->size() == 0) throw fail("the file has no subgraph");
  const auto* graph = root->subgraphs()->Get(0);
  const auto* buffers = root->buffers();
  const size_t num_buffers = buffers ? buffers->size() : 0;

  Model model;
  model.inputs = to_vector(graph->inputs());
  model.outputs = to_vector(graph->outputs());
  const size_t num_tensors = graph->tensors() ? graph->tensors()->size() : 0;
  for (size_t i = 0; i < num_tensors; ++i) {
    const auto* t = graph->tensors()->Get(static_cast<fb::uoffset_t>(i));
    Tensor out;
    out.name = t->name() ? t->name()->str() : fmt::format("tensor#{}", i);
    out.shape = to_vector(t->shape());
    if (!known_type(t->type())) throw fail(fmt::format("tensor '{}' has unsupported type {}", out.name, t->type()));
    out.type = static_cast<TensorType>(t->type());
    for (int32_t d : out.shape)
      if (d < 0 || d > (1 << 24))
        throw fail(fmt::format("tensor '{}' has invalid shape {}", out.name, out.shape_string()));
    if (const auto* q = t->quantization()) {
      out.scale = to_vector(q->scale());
      out.zero_point = to_vector(q->zero_point());
      out.quantized_dimension = q->quantized_dimension();
    }
    if (t->buffer() >= num_buffers && t->buffer() != 0)
      throw fail(fmt::format("tensor '{}' refers to buffer {} of {}", out.name, t->buffer(), num_buffers));
    if (t->buffer() < num_buffers) {
      const auto* b = buffers->Get(t->buffer());
      if (b->data() && b->data()->size() > 0) {
        out.has_data = true;
        out.offset = static_cast<size_t>(b->data()->data() - bytes.data());
        out.size = b->data()->size();
      } else if (b->offset() > 1) {  // data appended after the flatbuffer (files > 2 GB)
        if (b->offset() > bytes.size() || b->size() > bytes.size() - b->offset())
          throw fail(fmt::format("tensor '{}' data lies outside the file (truncated?)", out.name));
        out.has_data = true;
        out.offset = static_cast<size_t>(b->offset());
        out.size = static_cast<size_t>(b->size());
      }
    }
    if (out.has_data &&
        static_cast<int64_t>(out.size) != out.num_elements() * static_cast<int64_t>(element_size(out.type)))
      throw fail(fmt::format("tensor '{}' ({}) holds {} bytes, its shape needs {}", out.name, out.shape_string(),
                             out.size, out.num_elements() * static_cast<int64_t>(element_size(out.type))));
    model.tensors.push_back(std::move(out));
  }

  const auto* codes = root->operator_codes();
  const size_t num_ops = graph->operators() ? graph->operators()->size() : 0;
  for (size_t i = 0; i < num_ops; ++i) {
    const auto* o = graph->operators()->Get(static_cast<fb::uoffset_t>(i));
    Operator op;
    if (!codes || o->opcode_index() >= codes->size())
      throw fail(fmt::format("operator {} has an invalid opcode index", i));
    const auto* code = codes->Get(o->opcode_index());
    // Files from before the int32 builtin_code field only set the deprecated byte.
    op.builtin_code = std::max<int32_t>(code->deprecated_builtin_code(), code->builtin_code());
    op.op = to_op(op.builtin_code);
    op.inputs = to_vector(o->inputs());
    op.outputs = to_vector(o->outputs());
    for (int32_t idx : op.inputs)
      if (idx >= static_cast<int32_t>(num_tensors))
        throw fail(fmt::format("operator {} reads tensor {} of {}", i, idx, num_tensors));
    for (int32_t idx : op.outputs)
      if (idx < 0 || idx >= static_cast<int32_t>(num_tensors))
        throw fail(fmt::format("operator {} writes tensor {} of {}", i, idx, num_tensors));
    if (o->options_type() == kConv2DOptions && o->options()) {
      const auto* c = static_cast<const Conv2DOptions*>(o->options());
      op.padding = static_cast<Padding>(c->padding());
      op.stride_w = c->stride_w();
      op.stride_h = c->stride_h();
      op.activation = to_activation(c->activation());
    } else if (o->options_type() == kDepthwiseConv2DOptions && o->options()) {
      const auto* c = static_cast<const DepthwiseConv2DOptions*>(o->options());
      op.padding = static_cast<Padding>(c->padding());
      op.stride_w = c->stride_w();
      op.stride_h = c->stride_h();
      op.depth_multiplier = c->depth_multiplier();
      op.activation = to_activation(c->activation());
    }
    model.operators.push_back(std::move(op));
  }
  model.bytes = std::move(bytes);
  return model;
}

std::vector<float> Model::dequantize(int index) const {
  if (index < 0 || index >= static_cast<int>(tensors.size()))
    throw Error(fmt::format("tensor index {} out of range", index));
  const Tensor& t = tensors[static_cast<size_t>(index)];
  if (!t.has_data) throw Error(fmt::format("tensor '{}' has no constant data", t.name));
  const uint8_t* data = bytes.data() + t.offset;
  const auto n = static_cast<size_t>(t.num_elements());
  std::vector<float> out(n);
  if (t.type == TensorType::Float32) {
    std::memcpy(out.data(), data, n * sizeof(float));
    return out;
  }
  if (t.type == TensorType::Float16) {
    for (size_t i = 0; i < n; ++i) {
      uint16_t bits;
      std::memcpy(&bits, data + 2 * i, 2);
      out[i] = static_cast<float>(cv::float16_t::fromBits(bits));
    }
    return out;
  }
  if (t.type == TensorType::Int64) throw Error(fmt::format("tensor '{}' is int64, not a weight", t.name));
  // Quantized: one scale per tensor, or per channel along quantized_dimension.
  if (t.scale.empty()) throw Error(fmt::format("tensor '{}' is quantized but has no scale", t.name));
  size_t channels = 1, inner = 1;
  if (t.scale.size() > 1) {
    const int qd = t.quantized_dimension;
    if (qd < 0 || qd >= static_cast<int>(t.shape.size()) ||
        t.shape[static_cast<size_t>(qd)] != static_cast<int>(t.scale.size()))
      throw Error(fmt::format("tensor '{}' ({}) has {} scales along dimension {}", t.name, t.shape_string(),
                              t.scale.size(), qd));
    channels = t.scale.size();
    for (size_t d = static_cast<size_t>(qd) + 1; d < t.shape.size(); ++d) inner *= static_cast<size_t>(t.shape[d]);
  }
  if (!t.zero_point.empty() && t.zero_point.size() != t.scale.size())
    throw Error(
        fmt::format("tensor '{}' has {} scales but {} zero points", t.name, t.scale.size(), t.zero_point.size()));
  for (size_t i = 0; i < n; ++i) {
    const size_t c = channels > 1 ? (i / inner) % channels : 0;
    const double zp = t.zero_point.empty() ? 0.0 : static_cast<double>(t.zero_point[c]);
    double q;
    switch (t.type) {
      case TensorType::UInt8: q = data[i]; break;
      case TensorType::Int8: q = static_cast<int8_t>(data[i]); break;
      default: {
        int32_t v;
        std::memcpy(&v, data + 4 * i, 4);
        q = v;
      }
    }
    out[i] = static_cast<float>((q - zp) * t.scale[c]);
  }
  return out;
}

}  // namespace maskwatch::tflite
