#include "util/paths.h"

#include <cstdlib>

#ifndef MASKWATCH_DEFAULT_ASSET_DIR
#define MASKWATCH_DEFAULT_ASSET_DIR "assets"
#endif
#ifndef MASKWATCH_SHARED_DIR
#define MASKWATCH_SHARED_DIR "../shared"
#endif
#ifndef MASKWATCH_SOURCE_DIR
#define MASKWATCH_SOURCE_DIR "."
#endif

namespace maskwatch {

std::filesystem::path installed_data_dir() {
  std::error_code ec;
  const auto dir = executable_dir().parent_path() / "share" / "maskwatch";
  return std::filesystem::is_directory(dir / "models", ec) ? dir : std::filesystem::path{};
}

std::filesystem::path asset_dir() {
  if (const char* env = std::getenv("MASKWATCH_ASSETS"); env && *env) return env;
  if (const auto installed = installed_data_dir(); !installed.empty()) return installed / "assets";
  return MASKWATCH_DEFAULT_ASSET_DIR;
}

std::filesystem::path asset_path(const std::string& name) { return asset_dir() / name; }

std::filesystem::path shared_data_dir() { return MASKWATCH_SHARED_DIR; }

std::filesystem::path default_seed_data_path() { return shared_data_dir() / "data" / "seed-masks"; }

std::filesystem::path default_real_data_path() { return shared_data_dir() / "data" / "real-masks"; }

std::filesystem::path default_incorrect_data_path() { return shared_data_dir() / "data" / "real-masks-incorrect"; }

std::filesystem::path default_exclude_path() {
  return std::filesystem::path(MASKWATCH_SOURCE_DIR) / "data" / "label-exclusions.txt";
}

std::filesystem::path executable_dir() {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::current_path() : self.parent_path();
}

std::filesystem::path sibling_executable(const std::string& name) { return executable_dir() / name; }

std::filesystem::path shipped_models_dir() {
  if (const auto installed = installed_data_dir(); !installed.empty()) return installed / "models";
  return std::filesystem::path(MASKWATCH_SOURCE_DIR) / "models";
}

std::filesystem::path default_model_path() {
  if (const char* env = std::getenv("MASKWATCH_MODEL"); env && *env) return env;
  return shipped_models_dir() / "model.onnx";
}

std::filesystem::path default_classifier_path() {
  if (const char* env = std::getenv("MASKWATCH_MODEL"); env && *env) return env;
  std::error_code ec;
  const auto ensemble = shipped_models_dir() / "ensemble.json";
  return std::filesystem::is_regular_file(ensemble, ec) ? ensemble : default_model_path();
}

}  // namespace maskwatch
