// Options shared by `run`, `detect` and `bench`: which models, face-detector settings and
// crop margin. add_to() registers the flags; detector_options() adds the face model path.
#pragma once
#include <CLI/CLI.hpp>

#include <memory>
#include <string>

#include "vision/face_detector.h"
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
  InferenceEngine engine() const {
    return engine_name == "opencv" ? InferenceEngine::OpenCvDnn : InferenceEngine::Xnnpack;
  }
};

// --face-model's help: the model names it accepts, the default, or a path.
std::string face_model_help();

}  // namespace maskwatch::app
