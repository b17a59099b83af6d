// `maskwatch train`: two-phase transfer learning of the mask classifier.
//
//   1. Data: scan class folders, decode once into memory, group near-duplicates, split
//      70/15/15 (stratified, groups kept whole), write split.json.
//   2. Phase 1: backbone frozen (BN in inference mode), Adam on the head. Each epoch runs
//      the frozen backbone on freshly augmented images (inference mode, fast path), and keeps
//      the frozen-prefix features of the first epochs for phase 2.
//   3. Phase 2: blocks >= fine_tune_from_block and the final conv unfrozen, lower learning
//      rate. The prefix before them stays frozen, so its features for augmented images are
//      reused from phase 1 (or recomputed identically) and only the tail runs with gradients.
//   4. Best epoch by validation loss -> test metrics -> model.onnx + model.json, plots,
//      metrics.json, MODEL_CARD.md. A checkpoint is written atomically after every epoch.
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "data/augment.h"
#include "data/near_duplicates.h"
#include "data/split.h"

namespace maskwatch {

struct TrainOptions {
  std::filesystem::path data, backbone, out;
  int epochs = 15;              // phase 1
  int fine_tune_epochs = 5;     // phase 2
  int batch = 32;
  int input_size = 224;
  uint64_t seed = 42;
  double lr = 1e-3;             // phase 1 (Keras Adam default)
  double fine_tune_lr = 1e-4;   // phase 2
  int fine_tune_from_block = 14;  // phase 2 trains blocks 14..16 + the final 1x1 conv
  int patience = 0;             // early stopping per phase (0 = off)
  int hidden = 128;
  double dropout = 0.5;
  SplitFractions fractions;
  AugmentOptions augment;
  bool dedup = true;
  DuplicateOptions dedup_options;
  int limit_per_class = 0;      // use at most N images per class (0 = all)
  bool resume = false, force = false;
  int stop_after_epochs = 0;    // stop as if interrupted after N epochs this run (tests)
  int threads = 0;
  std::string command_line;     // recorded in the model card

  // Everything that changes the result (not out/resume/threads...), for metrics and resume.
  nlohmann::json recipe() const;
};

struct TrainResult {
  bool completed = false;        // false when stopped early (--stop-after-epochs / Ctrl-C)
  nlohmann::json metrics;        // what metrics.json holds
};

TrainResult train_mask_model(const TrainOptions& options);

// Set from a SIGINT handler: training stops after the current batch, keeping the last
// complete epoch's checkpoint.
void request_training_stop();

}  // namespace maskwatch
