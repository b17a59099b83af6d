// Options shared by `run`, `detect` and `bench`: which models, face-detector settings and
// crop margin. add_to() registers the flags; detector_options() adds the face model path.
#pragma once
#include <CLI/CLI.hpp>

#include "app/cli.h"

#include <cctype>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "vision/face_detector.h"
#include "vision/face_stage_settings.h"
#include "vision/mask_classifier.h"
#include "vision/pipeline.h"

namespace maskwatch::app {

struct VisionOptions {
  std::string model;
  FaceDetectorOptions detector;
  std::string face_model;
  PipelineOptions pipeline;
  std::string engine_name = "xnnpack";  // --engine
  int threads = 0;

  VisionOptions();
  void add_to(CLI::App* cmd);
  FaceDetectorOptions detector_options() const;
  // The files the command reads its models from (the classifier's, model_files(), and the face
  // detector's): no output may be written over them.
  std::vector<std::filesystem::path> model_input_files() const;
  InferenceEngine engine() const {
    return engine_name == "opencv" ? InferenceEngine::OpenCvDnn : InferenceEngine::Xnnpack;
  }
};

// A face-stage setting as a flag: the flag, range and help serve's config key has too.
template <class T>
CLI::Option* add_setting(CLI::App* cmd, const SettingSpec& spec, T& value) {
  std::string help = spec.help;
  help[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(help[0])));
  return cmd->add_option(spec.flag, value, help + " (serve: detector." + spec.key + ")")
      ->capture_default_str()
      ->check(in_range(static_cast<T>(spec.lo), static_cast<T>(spec.hi)));
}

// --face-model's help: the model names it accepts, the default, or a path.
std::string face_model_help();

}  // namespace maskwatch::app
