#include "app/vision_options.h"
#include "app/cli.h"

#include <fmt/format.h>

#include "util/paths.h"

namespace maskwatch::app {

VisionOptions::VisionOptions() : model(default_classifier_path().string()) {}

void VisionOptions::add_to(CLI::App* cmd) {
  cmd->add_option("--model", model,
                  "Mask classifier model.onnx (model.json beside it), or an ensemble's .json (`maskwatch ensemble`: "
                  "each face costs one forward per member, or under a cascade one for the faces its first model is "
                  "sure of). The default, models/ensemble.json, is four models with a cascade")
      ->capture_default_str();
  cmd->add_option("--face-model", face_model, face_model_help());
  add_setting(cmd, face_stage::kFaceThreshold, detector.score_threshold);
  add_setting(cmd, face_stage::kDetectWidth, detector.detect_width);
  add_setting(cmd, face_stage::kMargin, pipeline.crop_margin);
  cmd->add_option("--engine", engine_name,
                  "Inference engine of the classifier and the 2023 face models: xnnpack (faster) or opencv")
      ->capture_default_str()
      ->check(CLI::IsMember({"xnnpack", "opencv"}));
  add_threads_option(cmd, threads);
}

std::string face_model_help() {
  std::string names;
  for (const auto& n : face_model_names()) names += fmt::format("{}{} ({})", names.empty() ? "" : ", ", n.name, n.what);
  return fmt::format(
      "Face detector: a name ({}) or a YuNet 2022/2023 .onnx file (default {}; Haar cascade if its file is missing)",
      names, default_face_model_name());
}

std::vector<std::filesystem::path> VisionOptions::model_input_files() const {
  auto files = model_files(model);
  files.push_back(resolve_face_model(face_model));
  return files;
}

FaceDetectorOptions VisionOptions::detector_options() const {
  FaceDetectorOptions o = detector;
  o.model = face_model;
  o.xnnpack = engine() == InferenceEngine::Xnnpack;
  return o;
}

}  // namespace maskwatch::app
