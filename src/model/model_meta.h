// model.json: the sidecar that says how to use model.onnx correctly (class names in output
// order, input size, colour order, scaling) and where it came from (training data manifest,
// metrics). It also records model.onnx's sha256, so a mismatched pair is refused instead of
// silently giving wrong answers.
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/face_quality.h"

namespace maskwatch {

inline constexpr int kModelFormatVersion = 1;

struct ModelMeta {
  std::vector<std::string> classes;  // output order
  int input_size = 224;              // square, pixels
  std::string onnx_sha256;           // of the model.onnx this sidecar belongs to
  // Temperature fitted on the validation split, already folded into the ONNX model's last
  // layer (its outputs are the calibrated probabilities); 1 = uncalibrated. For reference.
  double temperature = 1;
  // How the classifier's input crop is cut from a frame (face detector, margin).
  nlohmann::json crop = {{"face_detector", "YuNet"}, {"margin", 0.5}};
  nlohmann::json training = nlohmann::json::object();  // recipe, data manifest, metrics
  // When a face's answer cannot be trusted (model/face_quality.h); absent or null = always
  // answer (setting "quality_gate": null turns a model's gate off).
  QualityGate quality_gate;

  nlohmann::json to_json() const;
  // Throws Error naming the file and the first missing or wrong field.
  static ModelMeta from_json(const nlohmann::json& j, const std::string& origin);
  static ModelMeta load(const std::filesystem::path& json_path);
  void save(const std::filesystem::path& json_path) const;  // atomic

  // Index of a class name, or -1.
};

// model.onnx -> model.json (same directory, same stem).
std::filesystem::path sidecar_path(const std::filesystem::path& onnx_path);

}  // namespace maskwatch
