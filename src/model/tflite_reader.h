// Reads a TensorFlow Lite flatbuffer into plain C++ structs: tensors (with quantization
// parameters and a view of their data) and operators (with conv options). The table
// accessors are written here from the published schema (tensorflow/lite/schema/schema.fbs);
// flatbuffers' Verifier checks every table and vector we touch before we read it, so a
// truncated or corrupted file is refused instead of read out of bounds.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace maskwatch::tflite {

enum class TensorType : int8_t { Float32 = 0, Float16 = 1, Int32 = 2, UInt8 = 3, Int64 = 4, Int8 = 9 };
enum class Op : int32_t {
  Add = 0,
  AveragePool2D = 1,
  Conv2D = 3,
  DepthwiseConv2D = 4,
  Dequantize = 6,
  FullyConnected = 9,
  Reshape = 22,
  Softmax = 25,
  Mean = 40,
  Quantize = 114,
  Other = -1
};
enum class Padding : int8_t { Same = 0, Valid = 1 };
enum class Activation : int8_t { None = 0, Relu = 1, ReluN1To1 = 2, Relu6 = 3, Tanh = 4, Other = -1 };

struct Tensor {
  std::string name;
  std::vector<int32_t> shape;
  TensorType type = TensorType::Float32;
  std::vector<float> scale;  // empty when not quantized
  std::vector<int64_t> zero_point;
  int32_t quantized_dimension = 0;
  bool has_data = false;        // false for activations
  size_t offset = 0, size = 0;  // where the data lies in Model::bytes

  int64_t num_elements() const;
  std::string shape_string() const;  // "32x3x3x3"
};

struct Operator {
  Op op = Op::Other;
  int32_t builtin_code = -1;
  std::vector<int32_t> inputs, outputs;
  // Conv2D / DepthwiseConv2D options (defaults when absent).
  Padding padding = Padding::Same;
  int32_t stride_w = 1, stride_h = 1, depth_multiplier = 1;
  Activation activation = Activation::None;
};

struct Model {
  std::vector<uint8_t> bytes;  // the whole file; tensors point into it
  std::vector<Tensor> tensors;
  std::vector<Operator> operators;  // execution order of subgraph 0
  std::vector<int32_t> inputs, outputs;

  // Tensor data as float32: dequantized ((q - zero_point) * scale, per tensor or per
  // channel along quantized_dimension) for uint8/int8/int32, converted for float16.
  // Throws Error naming the tensor if it has no data or inconsistent parameters.
  std::vector<float> dequantize(int tensor_index) const;
};

// Throws maskwatch::Error with a one-line reason (missing, empty, not a TFLite file,
// corrupted structure, tensor data outside the file, ...).
Model read_model(const std::filesystem::path& path);
Model parse_model(std::vector<uint8_t> bytes, const std::string& origin = "<memory>");

}  // namespace maskwatch::tflite
