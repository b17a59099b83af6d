// Maps the weights of a MobileNetV2 .tflite file (uint8 per-tensor, int8 per-channel or
// float32/float16) onto the LibTorch MobileNetV2. The convs in the file are matched to
// ours in execution order; BatchNorm is folded in the file, so each of our BN layers is
// set to identity-plus-bias (still trainable). A file that is not MobileNetV2-shaped is
// refused with a message naming the first tensor that does not fit.
#pragma once
#include <filesystem>
#include <string>

#include "nn/mobilenet_v2.h"

namespace maskwatch {

struct TfliteImportReport {
  std::string weight_format;  // e.g. "uint8 per-tensor", "int8 per-channel", "float32"
  int convs = 0;              // convolutions mapped (52 for MobileNetV2)
  int top_classes = 0;        // classes of the ImageNet top in the file (0 if none)
  std::string sha256;         // of the whole file
  std::string official_name;  // the official file it is (kOfficialBackbones), "" if none
};

// The official MobileNetV2 files `scripts/setup.sh` verifies (scripts/assets.sha256; a test
// keeps the two lists equal). A file that parses but is none of them (a damaged or shifted
// copy imports "fine" and calls a cat a cowboy hat) is imported with a warning that says so.
struct OfficialBackbone {
  const char* name;
  const char* sha256;
};
extern const OfficialBackbone kOfficialBackbones[2];

namespace tflite {
struct Model;
}

// Fills `net`. When net has an ImageNet top, the file's classifier must match it.
TfliteImportReport import_tflite(const std::filesystem::path& file, MobileNetV2& net);
// The same from an already parsed file; `origin` names it in errors.
TfliteImportReport import_tflite(const tflite::Model& model, const std::string& origin, MobileNetV2& net);

// MobileNetV2 with the file's ImageNet top (1001 classes for the official files), eval mode.
MobileNetV2 load_imagenet_mobilenet(const std::filesystem::path& file, TfliteImportReport* report = nullptr);

}  // namespace maskwatch
