#include "eval/gate_fit.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <opencv2/core.hpp>

#include "util/error.h"

namespace maskwatch {

AnsweredScore score_answered(const std::vector<double>& p, const std::vector<int>& truth,
                             const std::vector<int>& predicted, size_t classes, double threshold) {
  AnsweredScore s;
  std::vector<size_t> of(classes, 0), answered(classes, 0), right(classes, 0);
  for (size_t i = 0; i < p.size(); ++i) {
    const auto t = static_cast<size_t>(truth[i]);
    if (t >= classes) throw Error(fmt::format("answered score: true class {} of {} classes", truth[i], classes));
    ++s.n, ++of[t];
    if (p[i] < threshold) continue;
    ++s.answered, ++answered[t];
    if (predicted[i] == truth[i]) ++right[t];
  }
  s.coverage = s.n ? static_cast<double>(s.answered) / static_cast<double>(s.n) : 0;
  double sum = 0;
  size_t counted = 0;
  for (size_t c = 0; c < classes; ++c) {
    s.coverage_of.push_back(of[c] ? static_cast<double>(answered[c]) / static_cast<double>(of[c]) : 0);
    s.recall.push_back(answered[c] ? static_cast<double>(right[c]) / static_cast<double>(answered[c]) : 0);
    // A class with faces but none answered counts as recall 0: a gate that answers one class
    // only is not "balanced".
    if (of[c]) sum += s.recall.back(), ++counted;
  }
  s.balanced = counted ? sum / static_cast<double>(counted) : 0;
  return s;
}

std::vector<RiskCoveragePoint> risk_coverage(const std::vector<double>& p, const std::vector<int>& truth,
                                             const std::vector<int>& predicted, size_t classes) {
  std::vector<size_t> order(p.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] > p[b]; });
  std::vector<size_t> of(classes, 0), answered(classes, 0), right(classes, 0);
  size_t n = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    if (static_cast<size_t>(truth[i]) >= classes)
      throw Error(fmt::format("risk-coverage: true class {} of {} classes", truth[i], classes));
    ++of[static_cast<size_t>(truth[i])], ++n;
  }
  std::vector<RiskCoveragePoint> curve;
  size_t taken = 0;
  for (size_t k = 0; k < order.size(); ++k) {
    const size_t i = order[k];
    const auto t = static_cast<size_t>(truth[i]);
    ++taken, ++answered[t];
    if (predicted[i] == truth[i]) ++right[t];
    if (k + 1 < order.size() && p[order[k + 1]] == p[i]) continue;  // ties enter together
    double sum = 0;
    size_t counted = 0;
    for (size_t c = 0; c < classes; ++c)
      if (of[c]) sum += answered[c] ? static_cast<double>(right[c]) / static_cast<double>(answered[c]) : 0, ++counted;
    curve.push_back({p[i], n ? static_cast<double>(taken) / static_cast<double>(n) : 0,
                     counted ? sum / static_cast<double>(counted) : 0});
  }
  return curve;
}

double threshold_for(const std::vector<RiskCoveragePoint>& curve, double target) {
  double best = 1 - 1e-9;
  for (const auto& pt : curve)
    if (pt.balanced >= target) best = std::min(best, pt.threshold);
  if (!curve.empty() && curve.back().balanced >= target) return 0;
  return best;
}

QualityGate fit_quality_gate(const std::vector<GateSample>& samples, const std::vector<std::string>& names,
                             size_t classes, const GateFitOptions& o) {
  const size_t d = gate_input_names().size();
  if (samples.empty()) throw Error("quality gate: no samples to fit on");
  // Each class weighs the same in total; within it every sample alike.
  std::vector<double> class_n(classes, 0);
  size_t wrong = 0;
  for (const auto& s : samples) {
    if (s.inputs.size() != d) throw Error("quality gate: a sample has the wrong number of inputs");
    if (s.truth < 0 || static_cast<size_t>(s.truth) >= classes)
      throw Error(fmt::format("quality gate: a sample of class {} with {} classes", s.truth, classes));
    class_n[static_cast<size_t>(s.truth)] += 1;
    wrong += s.predicted != s.truth;
  }
  if (wrong == 0 || wrong == samples.size())
    throw Error(fmt::format("quality gate: the classifier was {} on all {} samples; nothing to learn from",
                            wrong ? "wrong" : "right", samples.size()));
  QualityGate g;
  g.mean.assign(d, 0);
  g.scale.assign(d, 0);
  for (const auto& s : samples)
    for (size_t j = 0; j < d; ++j) g.mean[j] += s.inputs[j] / static_cast<double>(samples.size());
  for (const auto& s : samples)
    for (size_t j = 0; j < d; ++j) g.scale[j] += std::pow(s.inputs[j] - g.mean[j], 2) / static_cast<double>(samples.size());
  for (auto& v : g.scale) v = std::max(1e-6, std::sqrt(v));
  // Newton's method (IRLS) on the weighted, ridge-penalised log loss; d + 1 unknowns.
  const int m = static_cast<int>(d) + 1;
  std::vector<double> w(static_cast<size_t>(m), 0);
  const double total = static_cast<double>(samples.size());
  for (int iter = 0; iter < 50; ++iter) {
    cv::Mat hess = cv::Mat::zeros(m, m, CV_64F), grad = cv::Mat::zeros(m, 1, CV_64F);
    std::vector<double> x(static_cast<size_t>(m));
    for (const auto& s : samples) {
      x[0] = 1;
      for (size_t j = 0; j < d; ++j) x[j + 1] = (s.inputs[j] - g.mean[j]) / g.scale[j];
      double z = 0;
      for (int j = 0; j < m; ++j) z += w[static_cast<size_t>(j)] * x[static_cast<size_t>(j)];
      const double p = 1 / (1 + std::exp(-z)), y = s.predicted == s.truth ? 1 : 0;
      const double weight = total / (static_cast<double>(classes) * class_n[static_cast<size_t>(s.truth)]);
      for (int a = 0; a < m; ++a) {
        grad.at<double>(a) += weight * (p - y) * x[static_cast<size_t>(a)];
        for (int b = 0; b < m; ++b)
          hess.at<double>(a, b) += weight * p * (1 - p) * x[static_cast<size_t>(a)] * x[static_cast<size_t>(b)];
      }
    }
    for (int a = 1; a < m; ++a) {  // the bias is not penalised
      grad.at<double>(a) += o.l2 * w[static_cast<size_t>(a)];
      hess.at<double>(a, a) += o.l2;
    }
    cv::Mat step;
    if (!cv::solve(hess, grad, step, cv::DECOMP_CHOLESKY)) cv::solve(hess, grad, step, cv::DECOMP_SVD);
    double moved = 0;
    for (int a = 0; a < m; ++a) {
      w[static_cast<size_t>(a)] -= step.at<double>(a);
      moved = std::max(moved, std::abs(step.at<double>(a)));
    }
    if (moved < 1e-8) break;
  }
  g.bias = w[0];
  g.weights.assign(w.begin() + 1, w.end());
  // The threshold: from the risk-coverage curve of the named condition.
  const auto it = std::find(names.begin(), names.end(), o.threshold_condition);
  if (it == names.end()) throw Error(fmt::format("quality gate: no condition '{}' to set the threshold on", o.threshold_condition));
  const auto cond = static_cast<size_t>(it - names.begin());
  std::vector<double> p;
  std::vector<int> truth, predicted;
  for (const auto& s : samples)
    if (s.condition == cond) {
      p.push_back(g.p_right(s.inputs));
      truth.push_back(s.truth);
      predicted.push_back(s.predicted);
    }
  if (p.empty()) throw Error(fmt::format("quality gate: no samples under '{}'", o.threshold_condition));
  g.threshold = threshold_for(risk_coverage(p, truth, predicted, classes), o.target);
  g.fit = {{"method", fmt::format("logistic regression of a right answer, classes weighted equally, ridge {} on the "
                                   "standardised weights",
                                   o.l2)},
           {"samples", samples.size()},
           {"conditions", names},
           {"threshold_condition", o.threshold_condition},
           {"target_balanced_accuracy", o.target}};
  return g;
}

void judge_folded_classes(QualityGate& gate, const ClassFold& fold) {
  if (!fold.folds()) return;
  gate.judged_of_model = fold.of_model;
  gate.judged_classes = fold.classes;
}

}  // namespace maskwatch
