// `eval --conditions`: the classifier's accuracy on the same decoded crops rendered under each
// camera condition (eval/conditions.h), overall, per class and per source; a text table, JSON
// and a contact sheet of a few fixed sample crops under every condition.
#pragma once
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "eval/class_fold.h"
#include "eval/gate_fit.h"
#include "eval/metrics.h"
#include "util/error.h"

namespace maskwatch {

class MaskClassifier;
class ProgressBar;

// What is evaluated: decoded crops (8-bit BGR) with their true class, source and a per-image
// seed (the same image always gets the same noise, whichever run or model).
struct ConditionInputs {
  std::vector<cv::Mat> crops;
  std::vector<int> labels;
  std::vector<std::string> sources;
  std::vector<uint64_t> seeds;
  ClassFold fold;  // `eval --map` of a model class: labels index fold.classes (none: the model's classes)
};

struct ConditionResult {
  std::string name, description;
  ClassificationReport report;  // every face, by its argmax (what a model without a gate shows)
  std::map<std::string, ClassificationReport> per_source;
  // Per input: the predicted class and the quality gate's P(right) (1 without a gate), and
  // the faces the gate answers (coverage, their balanced accuracy).
  std::vector<int> predicted;
  std::vector<double> p_right;
  AnsweredScore answered;
  std::vector<double> confidence;  // per input: the predicted class's probability
};

// Wrong answers given with at least `min_confidence` (the predicted class's probability): the
// errors users notice most and forgive least (issue 19: a bearded face called with_mask at
// 99 %). `inputs`: their indices, most confident first; `answered`: how many of them the
// quality gate lets through (P(right) >= `gate_threshold`; pass 0 when there is no gate).
struct ConfidentErrors {
  std::vector<size_t> inputs;
  size_t answered = 0;
};
constexpr double kConfidentlyWrong = 0.9;
ConfidentErrors confidently_wrong(const std::vector<int>& truth, const std::vector<int>& predicted,
                                  const std::vector<double>& confidence, const std::vector<double>& p_right,
                                  double gate_threshold, double min_confidence = kConfidentlyWrong);

struct ConditionsReport {
  std::vector<std::string> classes, sources;
  bool gated = false;  // the model has a quality gate: answered columns and curves mean something
  double gate_threshold = 0;
  std::vector<int> truth;                                     // per input
  std::vector<ConditionResult> results;                       // in camera_conditions() order
  std::vector<std::string> names() const;                     // of the results
  ConfidentErrors confidently_wrong(size_t condition) const;  // of results[condition]
  // The contact sheet's samples: input indices and true classes, and per condition their
  // renders and predicted classes.
  std::vector<size_t> samples;
  std::vector<int> sample_truth;
  std::vector<std::vector<cv::Mat>> sample_renders;
  std::vector<std::vector<int>> sample_predictions;

  // {"classes", "sources", "conditions": [{name, description, n, accuracy, balanced_accuracy,
  //   recall: {class: r}, per_source: {source: {n, balanced_accuracy}}, confusion,
  //   confidently_wrong: {min_confidence, count, answered, inputs: [{index, true, predicted,
  //   confidence, answered}]}}], "samples"}
  nlohmann::json to_json() const;
  // One line per condition: n, balanced accuracy, its change from clean, recall per class,
  // with a gate the share answered and their balanced accuracy, the confidently wrong answers
  // (every face, and with a gate those answered), balanced accuracy per source (columns).
  std::string table() const;
};

// Up to `per_class` inputs of each class, evenly spaced through that class's items in input
// order (so they come from several sources); a class short of items leaves its slots to the
// others. Fixed: the same inputs always give the same samples.
std::vector<size_t> pick_samples(const std::vector<int>& labels, size_t classes, size_t per_class = 4);

// Renders each condition in chunks (never all renders at once) and classifies them, `batch`
// crops per forward; advances `bar` (when given) by one per crop and condition. With
// `gate_samples`, every classified render is also kept as a sample to fit a quality gate on
// (eval/gate_fit.h; condition = index in the report's results). `only`: these conditions
// (names, in camera_conditions() order) instead of all.
ConditionsReport evaluate_conditions(MaskClassifier& classifier, const ConditionInputs& inputs, int batch,
                                     ProgressBar* bar = nullptr, std::vector<GateSample>* gate_samples = nullptr,
                                     const std::vector<std::string>& only = {});

// Re-scores a report as if the classifier had had `gate` (the samples evaluate_conditions
// collected for this report, in its order): P(right), coverage and answered accuracy.
void apply_gate(ConditionsReport& report, const std::vector<GateSample>& samples, const QualityGate& gate);

// A gate under whose threshold condition no face is answered: it would make every face
// uncertain, so it is never kept (the threshold condition's name is in the message).
struct GateAnswersNothing : Error {
  using Error::Error;
};

// The gate fitted on `samples` (what evaluate_conditions collected for `report`) for the answers
// `fold` folds (it judges the folded classes), then applied to `report`; `at` is the result of
// its threshold condition in report.results. `train` and `eval --fit-gate` fit through here.
// Throws Error when the fit fails (one outcome only, no sample of the threshold condition) and
// GateAnswersNothing.
struct FittedGate {
  QualityGate gate;
  size_t at = 0;
};
FittedGate fit_gate_on_report(ConditionsReport& report, const std::vector<GateSample>& samples, const ClassFold& fold,
                              const GateFitOptions& fit = {});

// Risk-coverage curves, one per condition (share of faces answered against the balanced
// accuracy of those answered), with the gate's threshold marked on each.
cv::Mat draw_risk_coverage(const ConditionsReport& report);

// One row per condition (its name and balanced accuracy on the left), the samples as columns
// at the crop's own size (no resampling hides blur or blocking); a red frame marks a sample
// the classifier got wrong under that condition.
cv::Mat draw_conditions_sheet(const ConditionsReport& report);

}  // namespace maskwatch
