// model.json: the sidecar that says how to use model.onnx correctly (class names in output
// order, input size, colour order, scaling) and where it came from (training data manifest,
// metrics). It also records model.onnx's sha256, so a mismatched pair is refused instead of
// silently giving wrong answers.
//
// The same format also describes an ensemble (a "members" list instead of "onnx_sha256"): several
// model.onnx files of one recipe whose probabilities are averaged (under a cascade only where the
// first is unsure), with a quality gate of its own fitted on the ensemble's answers
// (vision/mask_classifier.h loads it; `maskwatch ensemble` writes it).
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/face_quality.h"

namespace maskwatch {

inline constexpr int kModelFormatVersion = 1;

// One model of an ensemble: its ONNX file (relative to the ensemble's file, with its own model.json
// beside it) and that file's sha256, so a member replaced behind the ensemble's back is refused.
inline constexpr size_t kMaxEnsembleMembers = 16;  // each costs a model's memory and a forward per face
struct EnsembleMember {
  std::string onnx;
  std::string sha256;
};

struct ModelMeta {
  std::vector<std::string> classes;     // output order
  int input_size = 224;                 // square, pixels
  std::string onnx_sha256;              // of the model.onnx this sidecar belongs to ("" for an ensemble)
  std::vector<EnsembleMember> members;  // non-empty: an ensemble of these models, no ONNX of its own
  // An ensemble's cascade (0 = off): the first member answers a face alone when its top
  // probability is at least this; only the faces it is less sure of cost every member's forward.
  // The shipped ensemble's 0.995: on its validation crops every label and as few sure-and-wrong
  // answers as the full mean, 17.7 % of faces running every member (README "Four models, one
  // forward for most faces").
  double cascade_threshold = 0;
  // What a cascade threshold may be: above 0.5 (at or under it every face would be "sure") and
  // at most 1. `ensemble --cascade` and model.json are checked against this one rule.
  static bool valid_cascade_threshold(double p) { return p > 0.5 && p <= 1; }
  static constexpr const char* kCascadeRule = "a probability above 0.5 and at most 1";
  // Temperature fitted on the validation split, already folded into the ONNX model's last
  // layer (its outputs are the calibrated probabilities); 1 = uncalibrated. For reference.
  double temperature = 1;
  // How the classifier's input crop is cut from a frame (face detector, margin).
  nlohmann::json crop = {{"face_detector", "YuNet"}, {"margin", 0.5}};
  // crop's face_detector for a model trained on whole images (`train --no-face-crops`).
  static constexpr const char* kWholeImage = "none";
  bool trained_on_face_crops() const {
    const auto it = crop.find("face_detector");
    return it == crop.end() || !it->is_string() || it->get<std::string>() != kWholeImage;
  }
  nlohmann::json training = nlohmann::json::object();  // recipe, data manifest, metrics
  // When a face's answer cannot be trusted (model/face_quality.h); absent or null = always
  // answer (setting "quality_gate": null turns a model's gate off).
  QualityGate quality_gate;

  nlohmann::json to_json() const;
  // Throws Error naming the file and the first missing or wrong field.
  static ModelMeta from_json(const nlohmann::json& j, const std::string& origin);
  static ModelMeta load(const std::filesystem::path& json_path);
  void save(const std::filesystem::path& json_path) const;  // atomic

  bool is_ensemble() const { return !members.empty(); }
};

// model.onnx -> model.json (same directory, same stem).
std::filesystem::path sidecar_path(const std::filesystem::path& onnx_path);

// An ensemble member's ONNX file. Members are named relative to the ensemble's real file, so a
// link to the ensemble elsewhere still finds them.
std::filesystem::path member_path(const std::filesystem::path& ensemble_path, const EnsembleMember& member);

// Every file a classifier given as `model` is read from: the model and its sidecar, or an
// ensemble's file and each member's model and sidecar. For refusing an output path that
// would overwrite one (InputFiles). Never throws: a file it cannot read is listed as it is,
// and loading the classifier reports what is wrong with it.
std::vector<std::filesystem::path> model_files(const std::filesystem::path& model);

}  // namespace maskwatch
