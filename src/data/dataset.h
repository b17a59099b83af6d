// Labelled image folders: each --data folder has one sub-folder per class. Several folders
// train together: class folders are merged by name (after --map), and every item keeps its
// source so metrics can be reported per source.
//
// An item's name (`rel`) is "<data folder name>/<class folder>/<file>", '/'-separated: unique
// across folders, and what split.json and --exclude files list. Its source is the file-name
// prefix before "__" when there is one (real-masks names files "<source>__..."), else the
// data folder's name; a class folder folded into another class by --map adds its own name
// ("jolignier/mask_worn_incorrectly"), so those images are reported and weighted apart. When a data folder has a MANIFEST.csv with `file`, `repo` and `path`
// columns, crops cut from the same original photo share a `photo` key, so the split keeps
// them together.
//
// Loading decodes every image once and cuts the classifier's view of it the way run time
// does (data/training_crop.h), at the training size.
#pragma once
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "data/training_crop.h"

namespace maskwatch {

struct DatasetItem {
  std::string rel;  // "<data folder>/<class folder>/<file>"
  std::filesystem::path path;
  int label = 0;
  std::string source;
  std::string photo;                     // original photo from MANIFEST.csv, "" when unknown
  std::string sha256;                    // of the file bytes (set by load_dataset_images)
  CropKind crop = CropKind::WholeImage;  // set by load_dataset_images
};

struct SkippedImage {
  std::string rel, reason;
};

struct ScanOptions {
  // Fixed class order (a model's): every mapped class folder must be one of them, and a
  // class may be absent. Empty: the sorted mapped folder names.
  std::vector<std::string> classes;
  // Class folder name -> class name (--map FROM=TO), e.g. mask_worn_incorrectly -> without_mask.
  std::map<std::string, std::string> class_map;
  size_t min_classes = 2;
  // A file with one item name (rel) per line to leave out; '#' starts a comment. Lines for
  // data folders not in this run are ignored; a line naming no image of a given folder is
  // an error (a stale list would otherwise silently keep the images it meant to drop).
  std::filesystem::path exclude_file;
};

struct Dataset {
  std::vector<std::filesystem::path> roots;
  std::vector<std::string> classes;
  std::vector<DatasetItem> items;     // sorted by class, then name
  std::vector<SkippedImage> skipped;  // failed to decode
  std::vector<SkippedImage> doubtful; // used, with a warning: truncated JPEG, a side under 16 px
  size_t ignored_files = 0;           // non-image files
  size_t excluded = 0;                // left out by the exclude file
  size_t exclude_lines_for_other_folders = 0;
  std::map<std::string, std::string> class_map;

  std::vector<int> class_counts() const;
  std::vector<std::string> sources() const;  // sorted, distinct
  // The sampling weight of an item under `--source-weight` keys: its source ("jolignier", or a
  // folded folder's "jolignier/mask_worn_incorrectly"), else its source and class
  // ("jolignier/mask_worn_incorrectly" for a three-class model too); 1 when neither is given.
  double weight_of(const DatasetItem& item, const std::map<std::string, double>& weights) const;
  // Whether a `--source-weight` key names a source or a source/class of the items.
  bool has_weight_key(const std::string& key) const;
  std::string source_and_class(const DatasetItem& item) const;  // "jolignier/with_mask"
  // The manifest: one line "label<TAB>rel<TAB>sha256" per usable item, and its hash.
  std::string manifest_text() const;
  std::string manifest_sha256() const;
  nlohmann::json summary() const;  // counts (per class, per source), skipped, crops, manifest hash
};

// Lists the folders. Throws Error when one is missing or has no class folder, when fewer
// than min_classes classes result, a class folder holds no image file, two data folders
// share a name, a --map names a class folder no data folder has, or an exclude line names
// no image.
Dataset scan_datasets(const std::vector<std::filesystem::path>& dirs, const ScanOptions& options = {});

struct LoadOptions {
  int size = 224;          // output side (square)
  bool face_crops = true;  // cut the run-time crop around the detected face
  TrainingCropOptions crop;
  bool show_progress = true;
  // Training needs every class: one with no usable image is an error. A part of a data set
  // (eval's chunks) may hold a class's few images only, all broken: they are skipped like any.
  bool require_every_class = true;
};

// Decodes every item (on all cores), cuts its training crop and resizes it to size x size.
// Items that fail to decode are moved to dataset.skipped with a warning. Throws Error if a
// class ends up with no usable image.
std::vector<cv::Mat> load_dataset_images(Dataset& dataset, const LoadOptions& options);

// "FROM=TO" -> {FROM, TO}; throws Error on a malformed spec.
std::pair<std::string, std::string> parse_class_mapping(const std::string& spec);
// Every --map of a command; throws Error when one class folder is mapped to two classes.
std::map<std::string, std::string> parse_class_mappings(const std::vector<std::string>& specs);

}  // namespace maskwatch
