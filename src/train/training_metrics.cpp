#include "train/training_metrics.h"

namespace maskwatch {

nlohmann::json EpochRecord::to_json() const {
  return {{"epoch", epoch},
          {"phase", phase},
          {"phase_epoch", phase_epoch},
          {"train_loss", train_loss},
          {"train_accuracy", train_accuracy},
          {"val_loss", val_loss},
          {"val_accuracy", val_accuracy},
          {"learning_rate", learning_rate},
          {"seconds", seconds},
          {"images_per_second", images_per_second},
          {"best_so_far", best_so_far}};
}

EpochRecord EpochRecord::from_json(const nlohmann::json& j) {
  EpochRecord e;
  e.epoch = j.at("epoch");
  e.phase = j.at("phase");
  e.phase_epoch = j.at("phase_epoch");
  e.train_loss = j.at("train_loss");
  e.train_accuracy = j.at("train_accuracy");
  e.val_loss = j.at("val_loss");
  e.val_accuracy = j.at("val_accuracy");
  e.learning_rate = j.at("learning_rate");
  e.seconds = j.at("seconds");
  e.images_per_second = j.at("images_per_second");
  e.best_so_far = j.at("best_so_far");
  return e;
}

nlohmann::json TrainingTiming::to_json() const {
  return {{"decode_seconds", decode_s}, {"features_seconds", features_s}, {"near_duplicates_seconds", dedup_s},
          {"data_seconds", data_s()},   {"views_seconds", views_s},       {"phase1_seconds", phase1_s},
          {"phase2_seconds", phase2_s}, {"finish_seconds", finish_s},     {"wall_seconds_this_run", wall_s},
          {"resumed", resumed}};
}

nlohmann::json CalibrationReport::to_json() const {
  if (!skipped.empty()) return {{"skipped", skipped}, {"temperature", temperature}};
  return {{"method", "temperature scaling, fitted on the validation split (minimum NLL)"},
          {"temperature", temperature},
          {"val_nll", {{"before", val_nll_before}, {"after", val_nll_after}}},
          {"val_ece", {{"before", val_ece_before}, {"after", val_ece_after}}},
          {"test_ece", {{"before", test_ece_before}, {"after", test_ece_after}}},
          {"ece_bins", 10}};
}

nlohmann::json SplitEvaluation::to_json() const {
  auto j = overall.to_json();
  j["model"] = model;
  j["per_source"] = grouped_reports_json(per_source);
  return j;
}

nlohmann::json TrainingMetrics::to_json() const {
  nlohmann::json ep = nlohmann::json::array();
  for (const auto& e : epochs) ep.push_back(e.to_json());
  nlohmann::json m = {{"status", status},
                      {"recipe", recipe},
                      {"classes", classes},
                      {"data", data},
                      {"split", split},
                      {"near_duplicates", near_duplicates},
                      {"epochs", ep},
                      {"best_epoch", best_epoch},
                      {"best_val_loss", best_val_loss},
                      {"timing", timing.to_json()},
                      {"peak_rss_mib", peak_rss_mib}};
  if (status != "complete") return m;
  m["val"] = val.to_json();
  m["val"]["loss"] = val_loss;
  m["test"] = test.to_json();
  m["test"]["engine"] = "OpenCV DNN on the exported model.onnx";
  m["test"]["libtorch_agreement"] = {
      {"same_label", libtorch_same_label}, {"of", test.overall.n}, {"max_abs_prob_diff", libtorch_max_abs_prob_diff}};
  m["test"]["predictions"] = test_predictions;
  nlohmann::json base = nlohmann::json::array();
  for (const auto& b : baselines) base.push_back(b.to_json());
  m["baselines"] = base;
  m["calibration"] = calibration.to_json();
  m["quality_gate"] = quality_gate;
  m["model"] = {{"onnx", onnx_path}, {"onnx_bytes", onnx_bytes}};
  return m;
}

}  // namespace maskwatch
