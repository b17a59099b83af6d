// Fitting the quality gate (model/face_quality.h) and scoring it: which faces to answer.
//
// The gate is a logistic regression of "the classifier's label was right" on the gate's
// inputs, fitted on validation crops rendered under camera conditions (each class weighted
// equally, so the larger class does not decide alone). Its threshold is read off the
// risk-coverage curve of one condition (default `dim webcam`, the hardest one a real webcam
// sends): the lowest P(right) at which the faces answered are right `target` of the time
// (balanced over the true classes). Coverage = share of faces answered.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "eval/class_fold.h"
#include "model/face_quality.h"

namespace maskwatch {

// One classified crop: the gate's inputs, the true and the predicted class, its condition.
struct GateSample {
  std::vector<double> inputs;
  int truth = 0, predicted = 0;
  size_t condition = 0;
};

struct AnsweredScore {
  size_t n = 0, answered = 0;
  double coverage = 0;           // answered / n
  double balanced = 0;           // balanced accuracy of the answered faces: mean over the classes
                                 // that have faces of their answered recall (0 when none answered)
  std::vector<double> recall;    // per true class, answered faces only
  std::vector<double> coverage_of;  // per true class: share of its faces answered
};

// Scores the faces with P(right) `p` answered at `threshold` (p >= threshold). Throws Error
// on a true class outside [0, classes).
AnsweredScore score_answered(const std::vector<double>& p, const std::vector<int>& truth,
                             const std::vector<int>& predicted, size_t classes, double threshold);

// The risk-coverage curve: one point per distinct P(right) among the faces, from the most to
// the least sure; coverage rises, balanced accuracy of the answered faces (mostly) falls.
struct RiskCoveragePoint {
  double threshold, coverage, balanced;
};
std::vector<RiskCoveragePoint> risk_coverage(const std::vector<double>& p, const std::vector<int>& truth,
                                             const std::vector<int>& predicted, size_t classes);

// The lowest threshold whose answered faces reach `target` balanced accuracy on the curve
// (largest coverage that does); 0 when even all faces do; 1 - 1e-9 when none does.
double threshold_for(const std::vector<RiskCoveragePoint>& curve, double target);

struct GateFitOptions {
  double target = 0.99;                  // balanced accuracy of the answered faces
  std::string threshold_condition = "dim webcam";
  double l2 = 1;  // ridge on the standardised weights, as one sample's worth: it only keeps the
                  // fit finite when an input separates the outcomes, and fades with more data
};

// Fits weights and threshold; `condition_names[s.condition]` names each sample's condition.
// Throws Error when the samples have one outcome only (nothing to learn) or the threshold
// condition has no samples.
QualityGate fit_quality_gate(const std::vector<GateSample>& samples, const std::vector<std::string>& condition_names,
                             size_t classes, const GateFitOptions& options = {});

// A gate fitted on folded answers (samples classified through `fold`) judges the folded classes:
// the classifier must fold the same way before it asks it (QualityGate::judged_of_model).
void judge_folded_classes(QualityGate& gate, const ClassFold& fold);

}  // namespace maskwatch
