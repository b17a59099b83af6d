// Training data preparation: scan the --data folders, decode each image once into its
// run-time face crop at the training size, group near-duplicates (backbone embeddings at
// 112 px, then a geometric check) and crops of one photo, split 70/15/15 stratified by source
// and class with groups kept whole (or reuse a split.json), and compute the unaugmented
// frozen-prefix features of the validation and test images (training images only ever go
// through the backbone as augmented views).
#pragma once
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <vector>

#include "data/dataset.h"
#include "data/split_file.h"
#include "train/features.h"
#include "train/trainer.h"
#include "train/training_metrics.h"

namespace maskwatch {

struct PreparedData {
  Dataset ds;
  std::vector<cv::Mat> images;  // training-size crops, one per item
  std::vector<int> labels;
  SplitAssignment assignment;
  std::vector<size_t> train, val, test;  // dataset indices per split
  nlohmann::json split_info;
  torch::Tensor val_prefix, test_prefix;  // unaugmented frozen-prefix features
};

PreparedData prepare_data(const TrainOptions& o, const FrozenBackbone& frozen, TrainingTiming& timing);

// The dataset scan and load options a training run (and `eval` of its split) uses.
ScanOptions scan_options(const TrainOptions& o);
LoadOptions load_options(const TrainOptions& o);

}  // namespace maskwatch
