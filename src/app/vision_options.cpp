#include "app/vision_options.h"
#include "app/cli.h"

#include <fmt/format.h>

#include "util/paths.h"

namespace maskwatch::app {

VisionOptions::VisionOptions() : model(default_model_path().string()) {}

void VisionOptions::add_to(CLI::App* cmd) {
  cmd->add_option("--model", model, "Mask classifier model.onnx (model.json beside it)")->capture_default_str();
  cmd->add_option("--face-model", face_model, face_model_help());
  cmd->add_option("--face-threshold", detector.score_threshold, "Minimum YuNet face score")
      ->capture_default_str()
      ->check(CLI::Range(0.05, 1.0));
  cmd->add_option("--detect-width", detector.detect_width, "Width the frame is scaled to for face detection")
      ->capture_default_str()
      ->check(CLI::Range(64, 4096));
  cmd->add_option("--margin", pipeline.crop_margin, "Crop margin around a face (0.5 = 1.5x the face box)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3.0));
  cmd->add_option("--engine", engine_name, "Inference engine of the classifier and the 2023 face models: xnnpack (faster) or opencv")
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

FaceDetectorOptions VisionOptions::detector_options() const {
  FaceDetectorOptions o = detector;
  o.model = face_model;
  o.xnnpack = engine() == InferenceEngine::Xnnpack;
  return o;
}

}  // namespace maskwatch::app
