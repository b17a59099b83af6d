// Where maskwatch finds its inputs when the user does not say: the verified asset
// directory (MASKWATCH_ASSETS, else the one scripts/setup.sh configured at build time)
// and the shipped default model in the source tree's models/. An installed maskwatch (the
// .deb: /usr/bin/maskwatch) finds both in ../share/maskwatch beside its executable instead.
#pragma once
#include <filesystem>
#include <string>

namespace maskwatch {

std::filesystem::path asset_dir();
// asset_dir()/name; does not check that it exists.
std::filesystem::path asset_path(const std::string& name);
// The shared data folder configured at build time (../shared beside the project).
std::filesystem::path shared_data_dir();
// The seed training set (shared/data/seed-masks), the real photos (shared/data/real-masks) and
// the real masks worn under the nose or chin (shared/data/real-masks-incorrect).
std::filesystem::path default_seed_data_path();
std::filesystem::path default_real_data_path();
std::filesystem::path default_incorrect_data_path();
// The label exclusion list the default recipe uses (data/label-exclusions.txt in the project).
std::filesystem::path default_exclude_path();
// The shipped mask model (models/model.onnx), or MASKWATCH_MODEL when set: the one model file
// (the ensemble's first member; tools that need a model.onnx itself).
std::filesystem::path default_model_path();
// What every command classifies with by default: the shipped ensemble (models/ensemble.json: four
// models of the default recipe, the first alone where it is sure, README "Four models, one
// forward for most faces") where it exists, else default_model_path(); MASKWATCH_MODEL, when
// set, for both.
std::filesystem::path default_classifier_path();
// The folder of the models this project trains and ships (models/ in the source tree, or the
// installed share/maskwatch/models), whatever MASKWATCH_MODEL says.
std::filesystem::path shipped_models_dir();

// EXE_DIR/../share/maskwatch when the running executable was installed with one ("" if not).
std::filesystem::path installed_data_dir();

// The folder of the running executable (/proc/self/exe), and a program beside it.
std::filesystem::path executable_dir();
std::filesystem::path sibling_executable(const std::string& name);
inline constexpr const char* kRuntimeBinary = "maskwatch";
inline constexpr const char* kTrainingBinary = "maskwatch-train";

// Asset file names.
inline constexpr const char* kQuantBackbone = "mobilenet_v2_1.0_224_quant.tflite";
inline constexpr const char* kPtqBackbone = "tf2_mobilenet_v2_1.0_224_ptq.tflite";
inline constexpr const char* kImagenetLabels = "imagenet_labels.txt";
inline constexpr const char* kYunetModel = "face_detection_yunet_2022.onnx";

}  // namespace maskwatch
