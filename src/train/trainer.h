// `maskwatch train`: two-phase transfer learning of the mask classifier.
//
//   1. Data (train/prepare_data.h): scan the --data folders, decode each image once into its
//      run-time face crop, group near-duplicates and crops of one photo, split 70/15/15
//      stratified by source and class, write split.json.
//   2. Phase 1: backbone frozen (BN in inference mode), Adam on the head. Training images go
//      through the frozen backbone as K augmented views (each image warped and "photographed"
//      differently per view); epoch e trains on view e mod K. The frozen backbone makes an
//      image's features independent of its batch, so reusing a view is exact, and epochs
//      beyond K cost only the head.
//   3. Phase 2: blocks >= fine_tune_from_block and the final conv unfrozen, lower learning
//      rate. The prefix before them stays frozen, so its features of view k mod K are reused
//      and only the tail runs with gradients.
//   4. Best epoch by validation loss -> temperature calibration on val -> model.onnx +
//      model.json -> test metrics through the ONNX as `run` runs it, overall and per source ->
//      plots, metrics.json, MODEL_CARD.md. A checkpoint is written atomically after every epoch.
#pragma once
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/augment.h"
#include "data/near_duplicates.h"
#include "data/split.h"
#include "train/training_metrics.h"

namespace maskwatch {

struct TrainOptions {
  std::vector<std::filesystem::path> data;       // --data, repeatable; class folders merged by name
  std::map<std::string, std::string> class_map;  // --map FROM=TO
  std::map<std::string, double> source_weights;  // --source-weight SOURCE=W (default 1)
  // A weight above 0 (0 gave a NaN loss: an epoch of nothing), up to 100. The CLI and
  // train() check against this one rule.
  static bool valid_source_weight(double w) { return w > 0 && w <= 100; }
  static constexpr const char* kSourceWeightRule = "a number above 0, up to 100";
  std::filesystem::path exclude;                 // --exclude FILE
  std::filesystem::path split;                   // --split FILE: reuse another run's split.json
  std::filesystem::path backbone, out;
  std::vector<std::filesystem::path> baseline_models;  // also evaluated on the test split
  bool face_crops = true;                              // train on the run-time face crop (data/training_crop.h)
  std::filesystem::path face_model;                    // YuNet for the crops; empty = the asset directory's
  int epochs = 15;                                     // phase 1
  int fine_tune_epochs = 5;                            // phase 2
  int views = 4;  // augmented views per training image, cycled through the epochs (README: 4 vs 5)
  int batch = 32;
  int input_size = 160;  // chosen by measurement: README "Input size"
  uint64_t seed = 42;
  double lr = 1e-3;               // phase 1 (Keras Adam default)
  double fine_tune_lr = 1e-4;     // phase 2
  int fine_tune_from_block = 12;  // phase 2 trains blocks 12..16 + the final 1x1 conv (README "Worn correctly")
  int patience = 0;               // early stopping per phase (0 = off)
  int hidden = 128;
  double dropout = 0.5;
  bool calibrate = true;  // fit a temperature on the validation split
  bool quality_gate = true;  // fit the quality gate on validation crops under camera conditions
  SplitFractions fractions;
  AugmentOptions augment;
  // Grainy augmented crops smoothed as MaskClassifier::classify smooths grainy faces
  // (model/face_quality.h), so training sees what inference feeds the network. Off by
  // default: it measured no better on its own (README "Honest uncertainty").
  bool smooth_noisy = false;
  bool dedup = true;
  DuplicateOptions dedup_options;
  int limit_per_class = 0;  // use at most N images per class (0 = all)
  bool resume = false, force = false;
  int stop_after_epochs = 0;  // stop as if interrupted after N epochs this run (tests)
  int threads = 0;
  std::string command_line;  // recorded in the model card

  // Everything that changes the result (not out/resume/threads...), for metrics and resume.
  nlohmann::json recipe() const;
};

struct TrainResult {
  bool completed = false;   // false when stopped early (--stop-after-epochs / Ctrl-C)
  TrainingMetrics metrics;  // what metrics.json holds
  // --resume of a run that had completed: nothing trained or written (metrics empty).
  bool already_complete = false;
};

TrainResult train_mask_model(const TrainOptions& options);

// The default recipe's data (README "Worn correctly"): seed-masks, real-masks and
// real-masks-incorrect, the masks under the nose or chin folded into without_mask (a mask
// counts only over mouth and nose) and sampled kIncorrectWeight times per epoch, being few.
// Fills o.data and, where the caller set none, the fold and the weight.
inline constexpr double kIncorrectWeight = 6;
void use_default_training_data(TrainOptions& o);

// Set from a signal handler: training stops after the current batch, keeping the last
// complete epoch's checkpoint.
void request_training_stop();

}  // namespace maskwatch
