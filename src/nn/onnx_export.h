// Exports the LibTorch MobileNetV2 (whole classifier, or a prefix of the backbone) to ONNX
// through libonnx's protobuf classes. BatchNorm is folded into the convs and only ops that
// OpenCV 4.6's ONNX importer reads are emitted (opset 10: Conv, Clip with min/max
// attributes for ReLU6, Add, GlobalAveragePool, Flatten, Gemm, Relu, Softmax); every
// model passes onnx::checker before it is returned.
#pragma once
#include <filesystem>
#include <string>

#include "model/model_meta.h"
#include "nn/mask_net.h"
#include "nn/mobilenet_v2.h"

namespace maskwatch {

struct OnnxExportOptions {
  // Fixed square input; the batch dimension is dynamic. Weights are float32: OpenCV 4.6's
  // ONNX importer refuses FLOAT16 initializers ("Unsupported data type: FLOAT16").
  int input_size = 224;
};

// Full classifier: input [N,3,S,S] in [-1,1] -> softmax probabilities [N, classes].
std::string export_classifier_onnx(MaskNet& net, const OnnxExportOptions& options);

// Backbone stages [0, last_stage]; with `pool` the output is the pooled [N, C] vector,
// otherwise the feature map. Used to run the frozen part of training in OpenCV DNN.
std::string export_backbone_onnx(MobileNetV2& backbone, int last_stage, bool pool, const OnnxExportOptions& options);

// Writes model.onnx and its model.json sidecar (with the ONNX file's sha256) atomically.
void save_model(const std::filesystem::path& onnx_path, MaskNet& net, ModelMeta meta, const OnnxExportOptions& options);

}  // namespace maskwatch
