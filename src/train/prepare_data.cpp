#include "train/prepare_data.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <opencv2/core.hpp>

#include "data/near_duplicates.h"
#include "util/error.h"
#include "util/json_io.h"
#include "util/progress.h"
#include "util/stopwatch.h"

namespace maskwatch {
namespace {

// Near-duplicate embeddings are computed at this size, not the training size: measured on
// seed + real-masks, 112 px found nearly the same groups as 160 px (2,895 against 2,985
// images in duplicate groups at 96 px) at half the cost of two full passes.
constexpr int kEmbeddingSize = 112;

// Frozen-prefix features of images, 32 at a time (bounded memory), with a progress bar.
torch::Tensor prefix_features(const FrozenBackbone& frozen, const std::vector<cv::Mat>& images, int size,
                              const std::string& label) {
  ProgressBar bar(label, images.size(), "img");
  std::vector<torch::Tensor> parts;
  for (size_t i = 0; i < images.size(); i += 32) {
    const std::vector<cv::Mat> chunk(images.begin() + static_cast<long>(i),
                                     images.begin() + static_cast<long>(std::min(images.size(), i + 32)));
    parts.push_back(frozen.prefix_of_images(chunk, size));
    bar.advance(chunk.size());
  }
  bar.finish();
  return torch::cat(parts, 0);
}

cv::Mat to_mat(const torch::Tensor& t) {
  const auto c = t.contiguous();
  return cv::Mat(static_cast<int>(c.size(0)), static_cast<int>(c.size(1)), CV_32F, c.data_ptr<float>()).clone();
}

// At most n items per class, chosen by a seeded hash of the name (stable across runs).
void limit_per_class(Dataset& ds, int n, uint64_t seed) {
  std::vector<DatasetItem> kept;
  for (size_t c = 0; c < ds.classes.size(); ++c) {
    std::vector<DatasetItem> items;
    for (const auto& it : ds.items)
      if (it.label == static_cast<int>(c)) items.push_back(it);
    std::sort(items.begin(), items.end(), [&](const DatasetItem& a, const DatasetItem& b) {
      return mix_seed(seed, fnv1a(a.rel)) < mix_seed(seed, fnv1a(b.rel));
    });
    if (static_cast<int>(items.size()) > n) items.resize(static_cast<size_t>(n));
    kept.insert(kept.end(), items.begin(), items.end());
  }
  std::sort(kept.begin(), kept.end(), [](const DatasetItem& a, const DatasetItem& b) {
    return a.label != b.label ? a.label < b.label : a.rel < b.rel;
  });
  ds.items = std::move(kept);
}

// Stratum of each item: its (source, class) pair, so the split keeps every source's class
// balance, not just the overall one.
std::vector<int> strata(const Dataset& ds, int* count) {
  std::map<std::pair<std::string, int>, int> ids;
  for (const auto& it : ds.items) ids.emplace(std::make_pair(it.source, it.label), 0);
  int next = 0;
  for (auto& [key, id] : ids) id = next++;
  *count = next;
  std::vector<int> out;
  for (const auto& it : ds.items) out.push_back(ids[{it.source, it.label}]);
  return out;
}

std::vector<std::string> photo_keys(const Dataset& ds) {
  std::vector<std::string> keys;
  for (const auto& it : ds.items) keys.push_back(it.photo);
  return keys;
}

}  // namespace

ScanOptions scan_options(const TrainOptions& o) {
  ScanOptions s;
  s.class_map = o.class_map;
  s.exclude_file = o.exclude;
  return s;
}

LoadOptions load_options(const TrainOptions& o) {
  LoadOptions l;
  l.size = o.input_size;
  l.face_crops = o.face_crops;
  l.crop.detector.model = o.face_model;
  return l;
}

namespace {

// One file under two labels (the same bytes in two class folders) teaches both answers for
// one input: named, for the exclusion list. Near-duplicates are not flagged: a face with and
// without a pasted mask (seed-masks) or crops of one photo are near each other on purpose.
void warn_label_conflicts(const Dataset& ds) {
  std::map<std::string, size_t> first;
  std::vector<std::string> examples;
  int conflicts = 0;
  for (size_t i = 0; i < ds.items.size(); ++i) {
    if (ds.items[i].sha256.empty()) continue;
    const auto [it, fresh] = first.emplace(ds.items[i].sha256, i);
    if (fresh || ds.items[it->second].label == ds.items[i].label) continue;
    ++conflicts;
    if (examples.size() < 3) examples.push_back(ds.items[it->second].rel + " = " + ds.items[i].rel);
  }
  if (conflicts)
    spdlog::warn("{} image(s) are byte for byte another image of another class (e.g. {}): list the wrong ones in the "
                 "exclusion file",
                 conflicts, fmt::join(examples, "; "));
}

}  // namespace

PreparedData prepare_data(const TrainOptions& o, const FrozenBackbone& frozen, TrainingTiming& timing) {
  PreparedData p;
  p.ds = scan_datasets(o.data, scan_options(o));
  if (o.limit_per_class > 0) limit_per_class(p.ds, o.limit_per_class, o.seed);
  for (const auto& [source, w] : o.source_weights)
    if (!p.ds.has_weight_key(source))
      throw Error(fmt::format("--source-weight {}: no such source, or source/class, in the data (sources: {})",
                              source, fmt::join(p.ds.sources(), ", ")));
  Stopwatch sw;
  p.images = load_dataset_images(p.ds, load_options(o));
  warn_label_conflicts(p.ds);
  timing.decode_s = sw.seconds();
  for (const auto& it : p.ds.items) p.labels.push_back(it.label);
  const int k = static_cast<int>(p.ds.classes.size());
  spdlog::info("{} images in {} classes ({}) from {} source(s), decoded in {}", p.ds.items.size(), k,
               fmt::join(p.ds.classes, ", "), p.ds.sources().size(), format_duration(timing.decode_s));

  const auto split_path = o.out / "split.json";
  const auto reuse = !o.split.empty()                                  ? o.split
                     : o.resume && std::filesystem::exists(split_path) ? split_path
                                                                       : std::filesystem::path();
  if (!reuse.empty()) {
    p.split_info = read_json(reuse, "split file");
    p.assignment = split_from_json(p.split_info, p.ds, reuse.string());
    if (reuse != split_path) write_json_atomic(split_path, p.split_info);
    spdlog::info("reusing the split in {}", reuse.string());
  } else {
    sw.reset();
    int num_strata = 0;
    const auto stratum = strata(p.ds, &num_strata);
    DuplicateGroups found;
    nlohmann::json dedup = {{"enabled", o.dedup}};
    if (o.dedup) {
      const int size = std::min(o.input_size, kEmbeddingSize);
      const auto plain = frozen.tail_pooled(prefix_features(frozen, p.images, size, "embeddings"));
      std::vector<cv::Mat> mirrored(p.images.size());
      for (size_t i = 0; i < p.images.size(); ++i) cv::flip(p.images[i], mirrored[i], 1);
      const auto mirror = frozen.tail_pooled(prefix_features(frozen, mirrored, size, "mirrored embeddings"));
      mirrored.clear();
      found = find_near_duplicates(p.images, to_mat(plain), to_mat(mirror), o.dedup_options);
    } else {
      found.group.resize(p.images.size());
      std::iota(found.group.begin(), found.group.end(), 0);
      found.num_groups = static_cast<int>(p.images.size());
      found.neighbours.resize(p.images.size());
    }
    // Crops of one photo stay together whether or not near-duplicates are searched.
    const int photo_merges = merge_groups_by_key(found, photo_keys(p.ds));
    std::vector<std::string> keys;
    for (const auto& item : p.ds.items) keys.push_back(item.rel);
    p.assignment.split = split_groups(stratum, found.group, keys, num_strata, o.fractions, o.seed);
    p.assignment.group = found.group;
    if (o.dedup) {
      dedup = found.summary();
      dedup["enabled"] = true;
      dedup["leak"] = leak_report(found, stratum, keys, num_strata, p.assignment.split, o.fractions, o.seed);
      spdlog::info(
          "near-duplicates: {} groups for {} images ({} groups with copies or crops of one photo); test "
          "images with a near copy in train: {} (a plain random split: {})",
          found.num_groups, p.images.size(), dedup["groups_with_duplicates"].get<int>(),
          dedup["leak"]["this_split"]["with_near_copy_in_train"].get<int>(),
          dedup["leak"]["plain_random_split"]["with_near_copy_in_train"].get<int>());
    }
    dedup["merged_by_photo"] = photo_merges;
    timing.dedup_s = sw.seconds();
    dedup["seconds"] = timing.dedup_s;
    p.split_info = split_to_json(
        p.ds, p.assignment,
        {{"seed", o.seed},
         {"fractions", {{"train", o.fractions.train}, {"val", o.fractions.val}, {"test", o.fractions.test}}},
         {"stratified_by", "source and class"},
         {"near_duplicates", dedup},
         {"data", p.ds.summary()}});
    write_json_atomic(split_path, p.split_info);
  }
  for (size_t i = 0; i < p.assignment.split.size(); ++i) {
    switch (p.assignment.split[i]) {
      case Split::Train: p.train.push_back(i); break;
      case Split::Val: p.val.push_back(i); break;
      case Split::Test: p.test.push_back(i); break;
    }
  }
  if (p.train.empty()) throw Error("the training split is empty: add images");
  sw.reset();
  const auto features_of = [&](const std::vector<size_t>& items, const char* label) {
    std::vector<cv::Mat> images;
    for (size_t i : items) images.push_back(p.images[i]);
    return images.empty() ? torch::Tensor() : prefix_features(frozen, images, o.input_size, label);
  };
  p.val_prefix = features_of(p.val, "validation features");
  p.test_prefix = features_of(p.test, "test features");
  timing.features_s = sw.seconds();
  return p;
}

}  // namespace maskwatch
