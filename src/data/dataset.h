// A labelled image folder: one sub-folder per class (class names = folder names, sorted).
// Scanning lists image files (other files are ignored and counted); loading decodes them
// once into memory at the training size, skipping (and listing) files that fail to decode.
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

namespace maskwatch {

struct DatasetItem {
  std::string rel;             // "class/file.jpg", '/'-separated: the item's stable name
  std::filesystem::path path;
  int label = 0;
  std::string sha256;          // of the file bytes (set by load_dataset_images)
};

struct SkippedImage {
  std::string rel, reason;
};

struct Dataset {
  std::filesystem::path root;
  std::vector<std::string> classes;
  std::vector<DatasetItem> items;     // sorted by class, then name
  std::vector<SkippedImage> skipped;  // failed to decode
  size_t ignored_files = 0;           // non-image files

  std::vector<int> class_counts() const;
  // The manifest: one line "label<TAB>rel<TAB>sha256" per usable item, and its hash.
  std::string manifest_text() const;
  std::string manifest_sha256() const;
  nlohmann::json summary() const;  // counts, skipped list, manifest hash
};

// Lists the folder. Throws Error when it is missing, has fewer than `min_classes` class
// folders, or a class folder holds no image file. `classes`, when given, fixes the class
// order (e.g. a model's) and requires every sub-folder to be one of them.
Dataset scan_dataset(const std::filesystem::path& dir, const std::vector<std::string>& classes = {},
                     size_t min_classes = 2);

// Decodes every item (on all cores) and returns each resized to size x size (aspect not kept,
// as Keras' target_size did). Items that fail to decode are moved to dataset.skipped with a
// warning. Throws Error if a class ends up with no usable image.
std::vector<cv::Mat> load_dataset_images(Dataset& dataset, int size, bool show_progress = true);

}  // namespace maskwatch
