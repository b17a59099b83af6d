#include "data/dataset.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <mutex>
#include <opencv2/core/utility.hpp>

#include "data/image_io.h"
#include "model/preprocess.h"
#include "util/error.h"
#include "util/files.h"
#include "util/progress.h"
#include "util/sha256.h"

namespace maskwatch {

std::vector<int> Dataset::class_counts() const {
  std::vector<int> counts(classes.size(), 0);
  for (const auto& it : items) ++counts[static_cast<size_t>(it.label)];
  return counts;
}

std::string Dataset::manifest_text() const {
  std::string text;
  for (const auto& it : items) text += fmt::format("{}\t{}\t{}\n", it.label, it.rel, it.sha256);
  return text;
}

std::string Dataset::manifest_sha256() const { return sha256_hex(manifest_text()); }

nlohmann::json Dataset::summary() const {
  nlohmann::json per_class = nlohmann::json::object();
  const auto counts = class_counts();
  for (size_t c = 0; c < classes.size(); ++c) per_class[classes[c]] = counts[c];
  nlohmann::json skipped_list = nlohmann::json::array();
  for (const auto& s : skipped) skipped_list.push_back({{"image", s.rel}, {"reason", s.reason}});
  return {{"root", root.string()},
          {"classes", classes},
          {"images", items.size()},
          {"per_class", per_class},
          {"skipped_count", skipped.size()},
          {"skipped", skipped_list},
          {"ignored_non_image_files", ignored_files},
          {"manifest_sha256", manifest_sha256()}};
}

Dataset scan_dataset(const std::filesystem::path& dir, const std::vector<std::string>& fixed_classes,
                     size_t min_classes) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) throw Error("data folder not found: " + dir.string());
  Dataset ds;
  ds.root = dir;
  std::vector<std::string> folders;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec))
    if (e.is_directory() && e.path().filename().string()[0] != '.') folders.push_back(e.path().filename().string());
  if (ec) throw Error("cannot list " + dir.string() + ": " + ec.message());
  std::sort(folders.begin(), folders.end());
  if (fixed_classes.empty()) {
    ds.classes = folders;
  } else {
    ds.classes = fixed_classes;
    for (const auto& f : folders)
      if (std::find(fixed_classes.begin(), fixed_classes.end(), f) == fixed_classes.end())
        throw Error(fmt::format("{}: folder '{}' is not one of the model's classes ({})", dir.string(), f,
                                fmt::join(fixed_classes, ", ")));
  }
  if (folders.size() < min_classes)
    throw Error(fmt::format("{}: found {} class folder(s), need at least {} (one sub-folder per class)", dir.string(),
                            folders.size(), min_classes));
  for (size_t c = 0; c < ds.classes.size(); ++c) {
    const auto class_dir = dir / ds.classes[c];
    if (!std::filesystem::is_directory(class_dir)) continue;  // a model class absent from an eval folder
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::recursive_directory_iterator(
             class_dir, std::filesystem::directory_options::skip_permission_denied, ec)) {
      if (!e.is_regular_file()) continue;
      if (is_image_file(e.path())) files.push_back(e.path());
      else ++ds.ignored_files;
    }
    std::sort(files.begin(), files.end());
    if (files.empty()) throw Error(fmt::format("class folder {} holds no image file", class_dir.string()));
    for (const auto& f : files)
      ds.items.push_back({ds.classes[c] + "/" + std::filesystem::relative(f, class_dir).generic_string(), f,
                          static_cast<int>(c), ""});
  }
  return ds;
}

std::vector<cv::Mat> load_dataset_images(Dataset& ds, int size, bool show_progress) {
  std::vector<cv::Mat> images(ds.items.size());
  std::vector<std::string> errors(ds.items.size());
  ProgressBar bar("decode", ds.items.size(), "img");
  std::mutex bar_mutex;
  cv::parallel_for_(cv::Range(0, static_cast<int>(ds.items.size())), [&](const cv::Range& r) {
    for (int i = r.start; i < r.end; ++i) {
      auto& item = ds.items[static_cast<size_t>(i)];
      std::string why;
      std::vector<uint8_t> bytes;
      try {
        bytes = read_file_bytes(item.path, "image");
      } catch (const Error& e) {
        why = e.what();
      }
      cv::Mat img = why.empty() ? decode_image(bytes, &why) : cv::Mat();
      if (!img.empty()) {
        item.sha256 = sha256_hex(bytes);
        images[static_cast<size_t>(i)] = resize_square(img, size).clone();
      } else {
        errors[static_cast<size_t>(i)] = why;
      }
      if (show_progress) {
        std::lock_guard<std::mutex> lock(bar_mutex);
        bar.advance(1);
      }
    }
  });
  if (show_progress) bar.finish();
  // Drop failures, keeping order.
  std::vector<DatasetItem> kept;
  std::vector<cv::Mat> kept_images;
  for (size_t i = 0; i < ds.items.size(); ++i) {
    if (images[i].empty()) {
      ds.skipped.push_back({ds.items[i].rel, errors[i]});
      continue;
    }
    kept.push_back(std::move(ds.items[i]));
    kept_images.push_back(std::move(images[i]));
  }
  ds.items = std::move(kept);
  if (!ds.skipped.empty()) {
    std::string names;
    for (size_t i = 0; i < ds.skipped.size() && i < 5; ++i) names += (i ? ", " : "") + ds.skipped[i].rel;
    spdlog::warn("skipped {} image(s) that could not be decoded: {}{}", ds.skipped.size(), names,
                 ds.skipped.size() > 5 ? ", ..." : "");
  }
  const auto counts = ds.class_counts();
  for (size_t c = 0; c < counts.size(); ++c)
    if (counts[c] == 0 && std::filesystem::is_directory(ds.root / ds.classes[c]))
      throw Error(fmt::format("class '{}' has no usable image (all failed to decode)", ds.classes[c]));
  return kept_images;
}

}  // namespace maskwatch
