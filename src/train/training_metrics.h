// What a training run measured, as typed fields with one to_json (metrics.json). The
// trainer fills it; `train` prints it, the model card and `bench --train` read it.
#pragma once
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "eval/metrics.h"

namespace maskwatch {

struct EpochRecord {
  int epoch = 0, phase = 0, phase_epoch = 0;
  double train_loss = 0, train_accuracy = 0, val_loss = 0, val_accuracy = 0, learning_rate = 0, seconds = 0,
         images_per_second = 0;
  bool best_so_far = false;
  nlohmann::json to_json() const;
  static EpochRecord from_json(const nlohmann::json& j);
};

struct TrainingTiming {
  double decode_s = 0, features_s = 0, dedup_s = 0;  // data preparation
  double views_s = 0;                                // augmented views through the frozen backbone
  double phase1_s = 0, phase2_s = 0;                 // training steps (phase 1 includes views)
  double finish_s = 0;                               // calibration, export, test through ONNX, plots
  double wall_s = 0;                                 // this process, start to end
  bool resumed = false;  // this process continued a run: data/views/wall are this session's only
  double data_s() const { return decode_s + features_s + dedup_s; }
  nlohmann::json to_json() const;
};

struct CalibrationReport {
  // Why no temperature was fitted (--no-calibrate, too few validation images); "" when one was.
  // Unfitted, the ECE and NLL fields mean nothing and are left out of the JSON.
  std::string skipped;
  double temperature = 1;
  double val_nll_before = 0, val_nll_after = 0;
  double val_ece_before = 0, val_ece_after = 0, test_ece_before = 0, test_ece_after = 0;
  nlohmann::json to_json() const;
};

// One model's predictions on the test split, overall and per source.
struct SplitEvaluation {
  std::string model;  // what made the predictions
  ClassificationReport overall;
  std::map<std::string, ClassificationReport> per_source;
  nlohmann::json to_json() const;
};

struct TrainingMetrics {
  std::string status = "running";
  nlohmann::json recipe, data, split, near_duplicates;
  std::vector<std::string> classes;
  std::vector<EpochRecord> epochs;
  int best_epoch = 0;  // 1-based
  double best_val_loss = 0;
  // Final (best epoch, calibrated) evaluation.
  double val_loss = 0;
  SplitEvaluation val, test;
  std::vector<SplitEvaluation> baselines;  // other models on the same test split (--baseline-model)
  nlohmann::json test_predictions = nlohmann::json::array();
  int libtorch_same_label = 0;
  double libtorch_max_abs_prob_diff = 0;
  CalibrationReport calibration;
  // The quality gate as fitted on validation (null: none): threshold, weights and per
  // condition the share answered and their balanced accuracy.
  nlohmann::json quality_gate;
  TrainingTiming timing;
  double peak_rss_mib = 0;
  std::string onnx_path;
  uintmax_t onnx_bytes = 0;

  nlohmann::json to_json() const;
};

}  // namespace maskwatch
