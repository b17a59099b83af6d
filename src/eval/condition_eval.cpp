#include "eval/condition_eval.h"

#include <fmt/format.h>

#include <algorithm>
#include <mutex>
#include <opencv2/core/utility.hpp>
#include <opencv2/imgproc.hpp>
#include <set>

#include "eval/conditions.h"
#include "eval/plots.h"
#include "util/error.h"
#include "util/progress.h"
#include "vision/mask_classifier.h"

namespace maskwatch {
namespace {

// Renders inputs [begin, end) under one condition on all cores. An error in a worker is
// carried out and thrown here: an exception must not leave OpenCV's thread pool.
std::vector<cv::Mat> render_range(const Condition& c, const ConditionInputs& in, size_t begin, size_t end) {
  std::vector<cv::Mat> out(end - begin);
  std::mutex m;
  std::string failure;
  cv::parallel_for_(cv::Range(static_cast<int>(begin), static_cast<int>(end)), [&](const cv::Range& r) {
    for (int i = r.start; i < r.end; ++i) {
      const auto k = static_cast<size_t>(i);
      try {
        out[k - begin] = c.render(in.crops[k], in.seeds[k]);
      } catch (const std::exception& e) {
        const std::lock_guard<std::mutex> lock(m);
        if (failure.empty()) failure = e.what();
      }
    }
  });
  if (!failure.empty()) throw Error(fmt::format("condition '{}': {}", c.name, failure));
  return out;
}

std::string percent(double v) { return fmt::format("{:.2f}", 100 * v); }

}  // namespace

std::vector<size_t> pick_samples(const std::vector<int>& labels, size_t classes, size_t per_class) {
  std::vector<std::vector<size_t>> of_class(classes);
  for (size_t i = 0; i < labels.size(); ++i)
    if (labels[i] >= 0 && static_cast<size_t>(labels[i]) < classes)
      of_class[static_cast<size_t>(labels[i])].push_back(i);
  // A class with fewer items than its share gives its slots to the classes that have more.
  const size_t total = per_class * classes;
  std::vector<size_t> take(classes, 0);
  for (size_t given = 0, round = 0; given < total && round < total; ++round)
    for (size_t c = 0; c < classes && given < total; ++c)
      if (take[c] < of_class[c].size()) ++take[c], ++given;
  std::vector<size_t> picked;
  for (size_t c = 0; c < classes; ++c)
    for (size_t k = 0; k < take[c]; ++k) {
      const auto& items = of_class[c];
      picked.push_back(items[(2 * k + 1) * items.size() / (2 * take[c])]);  // centres of equal slices
    }
  return picked;
}

ConditionsReport evaluate_conditions(MaskClassifier& classifier, const ConditionInputs& in, int batch,
                                     ProgressBar* bar, std::vector<GateSample>* gate_samples,
                                     const std::vector<std::string>& only) {
  for (const auto& name : only) find_condition(name);  // an unknown name is an error, not a silent skip
  const size_t n = in.crops.size();
  if (n == 0) throw Error("no image to evaluate under camera conditions");
  if (in.labels.size() != n || in.sources.size() != n || in.seeds.size() != n)
    throw Error("camera conditions: crops, labels, sources and seeds differ in number");
  ConditionsReport r;
  r.classes = in.fold.folds() ? in.fold.classes : classifier.classes();
  r.gated = classifier.quality_gate().enabled();
  r.gate_threshold = r.gated ? classifier.quality_gate().threshold : 0;
  r.truth = in.labels;
  const std::set<std::string> distinct(in.sources.begin(), in.sources.end());
  r.sources.assign(distinct.begin(), distinct.end());
  r.samples = pick_samples(in.labels, r.classes.size());
  for (const size_t s : r.samples) r.sample_truth.push_back(in.labels[s]);
  // Renders of one chunk at a time: 128 crops of 160 px are 10 MB, all conditions of a test
  // split would be 1.3 GB.
  constexpr size_t kChunk = 128;
  for (const auto& c : camera_conditions()) {
    if (!only.empty() && std::find(only.begin(), only.end(), c.name) == only.end()) continue;
    const size_t ci = r.results.size();
    std::vector<int> predicted(n);
    std::vector<double> p_right(n), confidence(n);
    for (size_t start = 0; start < n; start += kChunk) {
      const size_t end = std::min(n, start + kChunk);
      auto preds = classifier.classify_batched(render_range(c, in, start, end), batch);
      for (size_t k = 0; k < preds.size(); ++k) {
        in.fold.apply(preds[k]);
        predicted[start + k] = preds[k].label;
        confidence[start + k] = preds[k].score;
        // Without a gate the curve ranks faces by the classifier's own confidence.
        p_right[start + k] = r.gated ? preds[k].p_right : preds[k].score;
        if (gate_samples)
          gate_samples->push_back({gate_inputs(preds[k].quality, preds[k].probs), in.labels[start + k], preds[k].label, ci});
      }
      if (bar) bar->advance(end - start, c.name);
    }
    ConditionResult res{c.name,
                        c.description,
                        classification_report(in.labels, predicted, r.classes),
                        grouped_reports(in.labels, predicted, in.sources, r.classes),
                        predicted,
                        p_right,
                        score_answered(p_right, in.labels, predicted, r.classes.size(), r.gate_threshold),
                        confidence};
    r.results.push_back(std::move(res));
    std::vector<cv::Mat> renders;
    std::vector<int> labels;
    for (const size_t s : r.samples) {
      renders.push_back(c.render(in.crops[s], in.seeds[s]));
      labels.push_back(predicted[s]);
    }
    r.sample_renders.push_back(std::move(renders));
    r.sample_predictions.push_back(std::move(labels));
  }
  return r;
}

ConfidentErrors confidently_wrong(const std::vector<int>& truth, const std::vector<int>& predicted,
                                  const std::vector<double>& confidence, const std::vector<double>& p_right,
                                  double gate_threshold, double min_confidence) {
  const size_t n = truth.size();
  if (predicted.size() != n || confidence.size() != n || p_right.size() != n)
    throw Error("confidently_wrong: truth, predictions, confidences and P(right) differ in number");
  ConfidentErrors out;
  for (size_t i = 0; i < n; ++i)
    if (predicted[i] != truth[i] && confidence[i] >= min_confidence) {
      out.inputs.push_back(i);
      if (p_right[i] >= gate_threshold) ++out.answered;
    }
  std::stable_sort(out.inputs.begin(), out.inputs.end(),
                   [&](size_t a, size_t b) { return confidence[a] > confidence[b]; });
  return out;
}

ConfidentErrors ConditionsReport::confidently_wrong(size_t condition) const {
  const auto& c = results.at(condition);
  return maskwatch::confidently_wrong(truth, c.predicted, c.confidence, c.p_right, gated ? gate_threshold : 0);
}

std::vector<std::string> ConditionsReport::names() const {
  std::vector<std::string> out;
  for (const auto& c : results) out.push_back(c.name);
  return out;
}

nlohmann::json ConditionsReport::to_json() const {
  nlohmann::json rows = nlohmann::json::array();
  for (size_t ci = 0; ci < results.size(); ++ci) {
    const auto& c = results[ci];
    nlohmann::json recall = nlohmann::json::object(), per_source = nlohmann::json::object();
    for (size_t k = 0; k < classes.size(); ++k) recall[classes[k]] = c.report.per_class[k].recall;
    for (const auto& [source, rep] : c.per_source) {
      nlohmann::json source_recall = nlohmann::json::object();
      for (size_t k = 0; k < classes.size(); ++k)
        if (rep.per_class[k].n) source_recall[classes[k]] = rep.per_class[k].recall;
      per_source[source] = {{"n", rep.n},
                            {"accuracy", rep.accuracy},
                            {"balanced_accuracy", rep.balanced_accuracy},
                            {"recall", source_recall}};
    }
    rows.push_back({{"name", c.name},
                    {"description", c.description},
                    {"n", c.report.n},
                    {"accuracy", c.report.accuracy},
                    {"balanced_accuracy", c.report.balanced_accuracy},
                    {"recall", recall},
                    {"per_source", per_source},
                    {"confusion", c.report.confusion}});
    const auto sure = confidently_wrong(ci);
    nlohmann::json inputs = nlohmann::json::array();
    for (const size_t i : sure.inputs)
      inputs.push_back({{"index", i},
                        {"true", classes.at(static_cast<size_t>(truth[i]))},
                        {"predicted", classes.at(static_cast<size_t>(c.predicted[i]))},
                        {"confidence", c.confidence[i]},
                        {"answered", !gated || c.p_right[i] >= gate_threshold}});
    rows.back()["confidently_wrong"] = {{"min_confidence", kConfidentlyWrong},
                                        {"count", sure.inputs.size()},
                                        {"answered", sure.answered},
                                        {"inputs", inputs}};
    if (gated) {
      nlohmann::json answered_recall = nlohmann::json::object(), coverage_of = nlohmann::json::object();
      for (size_t k = 0; k < classes.size(); ++k) {
        answered_recall[classes[k]] = c.answered.recall[k];
        coverage_of[classes[k]] = c.answered.coverage_of[k];
      }
      rows.back()["answered"] = {{"threshold", gate_threshold},
                                 {"coverage", c.answered.coverage},
                                 {"coverage_by_class", coverage_of},
                                 {"balanced_accuracy", c.answered.balanced},
                                 {"recall", answered_recall}};
    }
  }
  nlohmann::json samples = nlohmann::json::array();
  for (size_t s = 0; s < this->samples.size(); ++s) {
    nlohmann::json predicted = nlohmann::json::object();
    for (size_t c = 0; c < results.size(); ++c)
      predicted[results[c].name] = classes.at(static_cast<size_t>(sample_predictions[c][s]));
    samples.push_back({{"index", this->samples[s]},
                       {"true", classes.at(static_cast<size_t>(sample_truth[s]))},
                       {"predicted", predicted}});
  }
  return {{"classes", classes}, {"sources", sources}, {"conditions", rows}, {"samples", samples}, {"gated", gated}};
}

std::string ConditionsReport::table() const {
  size_t name_w = 9;
  for (const auto& c : results) name_w = std::max(name_w, c.name.size());
  std::vector<size_t> class_w, source_w;
  std::string out = fmt::format("{:<{}}  {:>5}  {:>8}  {:>6}", "condition", name_w, "n", "balanced", "change");
  for (const auto& c : classes) {
    class_w.push_back(std::max<size_t>(7, c.size() + 2));  // "r " + class: recall
    out += fmt::format("  {:>{}}", "r " + c, class_w.back());
  }
  if (gated) out += fmt::format("  {:>8}  {:>8}", "answered", "their bal");
  out += fmt::format("  {:>10}", "sure-wrong");
  out += "  |";
  for (const auto& s : sources) {
    source_w.push_back(std::max<size_t>(6, s.size()));
    out += fmt::format("  {:>{}}", s, source_w.back());
  }
  out += "\n";
  const double clean = results.empty() ? 0 : results.front().report.balanced_accuracy;
  for (size_t ci = 0; ci < results.size(); ++ci) {
    const auto& c = results[ci];
    out += fmt::format("{:<{}}  {:>5}  {:>7}%  {:>+6.2f}", c.name, name_w, c.report.n,
                       percent(c.report.balanced_accuracy), 100 * (c.report.balanced_accuracy - clean));
    for (size_t k = 0; k < classes.size(); ++k)
      out += fmt::format("  {:>{}}", percent(c.report.per_class[k].recall), class_w[k]);
    if (gated) out += fmt::format("  {:>7}%  {:>7}%", percent(c.answered.coverage), percent(c.answered.balanced));
    const auto sure = confidently_wrong(ci);
    out += fmt::format("  {:>10}", gated ? fmt::format("{}/{}", sure.inputs.size(), sure.answered)
                                         : std::to_string(sure.inputs.size()));
    out += "  |";
    for (size_t k = 0; k < sources.size(); ++k) {
      const auto it = c.per_source.find(sources[k]);
      out +=
          fmt::format("  {:>{}}", it == c.per_source.end() ? "-" : percent(it->second.balanced_accuracy), source_w[k]);
    }
    out += "\n";
  }
  return out;
}

void apply_gate(ConditionsReport& r, const std::vector<GateSample>& samples, const QualityGate& gate) {
  const size_t n = r.truth.size();
  if (samples.size() != n * r.results.size()) throw Error("apply_gate: samples do not belong to this report");
  r.gated = gate.enabled();
  r.gate_threshold = gate.threshold;
  for (size_t c = 0; c < r.results.size(); ++c) {
    auto& res = r.results[c];
    for (size_t i = 0; i < n; ++i) res.p_right[i] = gate.p_right(samples[c * n + i].inputs);
    res.answered = score_answered(res.p_right, r.truth, res.predicted, r.classes.size(), gate.threshold);
  }
}

FittedGate fit_gate_on_report(ConditionsReport& report, const std::vector<GateSample>& samples, const ClassFold& fold,
                              const GateFitOptions& fit) {
  const auto names = report.names();
  FittedGate out;
  out.gate = fit_quality_gate(samples, names, report.classes.size(), fit);  // throws if that condition is missing
  out.at = static_cast<size_t>(std::find(names.begin(), names.end(), fit.threshold_condition) - names.begin());
  judge_folded_classes(out.gate, fold);
  apply_gate(report, samples, out.gate);
  if (report.results[out.at].answered.answered == 0)
    throw GateAnswersNothing(fmt::format("no threshold lets the answered faces under '{}' reach {:.2f} % balanced "
                                         "accuracy",
                                         fit.threshold_condition, 100 * fit.target));
  return out;
}

cv::Mat draw_risk_coverage(const ConditionsReport& r) {
  // Conditions drawn: the four worst (dim webcam, the one the threshold is set on, always
  // among them) and clean; all 17 would be unreadable.
  std::vector<size_t> order(r.results.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return r.results[a].report.balanced_accuracy < r.results[b].report.balanced_accuracy;
  });
  std::vector<size_t> shown;
  for (const size_t i : order)
    if (shown.size() < 4) shown.push_back(i);
  if (!r.results.empty() && std::find(shown.begin(), shown.end(), 0) == shown.end()) shown.push_back(0);
  const cv::Scalar palette[] = {{40, 40, 200}, {200, 120, 30}, {40, 150, 40}, {160, 60, 160}, {90, 90, 90}};
  std::vector<XySeries> series;
  double lowest = 1;
  for (size_t k = 0; k < shown.size(); ++k) {
    const auto& c = r.results[shown[k]];
    XySeries line{c.name, {}, {}, palette[k % 5]};
    for (const auto& pt : risk_coverage(c.p_right, r.truth, c.predicted, r.classes.size())) {
      line.x.push_back(pt.coverage);
      line.y.push_back(pt.balanced);
      if (pt.coverage >= 0.5) lowest = std::min(lowest, pt.balanced);
    }
    series.push_back(line);
    if (r.gated)
      series.push_back({fmt::format("{} at the gate: {:.1f}% answered", c.name, 100 * c.answered.coverage),
                        {c.answered.coverage},
                        {c.answered.balanced},
                        palette[k % 5],
                        true});
  }
  const double y_lo = std::max(0.0, std::floor((lowest - 0.01) * 50) / 50);
  return draw_xy_chart(r.gated ? fmt::format("Risk-coverage (gate threshold P(right) >= {:.3f})", r.gate_threshold)
                               : "Risk-coverage by classifier confidence (no gate)",
                       "share of faces answered", "balanced accuracy of those answered", series, false, true, y_lo,
                       1.0);
}

cv::Mat draw_conditions_sheet(const ConditionsReport& r) {
  const cv::Scalar ink(40, 40, 40), grey(110, 110, 110), wrong(40, 40, 220), white(255, 255, 255);
  const int font = cv::FONT_HERSHEY_SIMPLEX;
  int cell = 16;
  for (const auto& row : r.sample_renders)
    for (const auto& m : row) cell = std::max({cell, m.cols, m.rows});
  const int gap = 8, label_w = 200, header_h = 30, cols = static_cast<int>(r.samples.size());
  const int rows = static_cast<int>(r.sample_renders.size());
  cv::Mat sheet(header_h + rows * (cell + gap) + gap, label_w + cols * (cell + gap) + gap, CV_8UC3, white);
  cv::putText(sheet, "red frame: wrong", {10, header_h - 10}, font, 0.45, wrong, 1, cv::LINE_AA);
  for (int s = 0; s < cols; ++s)
    cv::putText(sheet, r.classes.at(static_cast<size_t>(r.sample_truth.at(static_cast<size_t>(s)))),
                {label_w + s * (cell + gap), header_h - 10}, font, 0.45, ink, 1, cv::LINE_AA);
  for (int row = 0; row < rows; ++row) {
    const int y = header_h + row * (cell + gap);
    const auto& res = r.results[static_cast<size_t>(row)];
    cv::putText(sheet, res.name, {10, y + cell / 2 - 4}, font, 0.6, ink, 1, cv::LINE_AA);
    cv::putText(sheet, fmt::format("balanced {:.1f}%", 100 * res.report.balanced_accuracy), {10, y + cell / 2 + 20},
                font, 0.45, grey, 1, cv::LINE_AA);
    for (int s = 0; s < cols; ++s) {
      const auto& img = r.sample_renders[static_cast<size_t>(row)][static_cast<size_t>(s)];
      const cv::Rect at(label_w + s * (cell + gap), y, img.cols, img.rows);
      img.copyTo(sheet(at));
      if (r.sample_predictions[static_cast<size_t>(row)][static_cast<size_t>(s)] !=
          r.sample_truth[static_cast<size_t>(s)])
        cv::rectangle(sheet, cv::Rect(at.x - 3, at.y - 3, at.width + 6, at.height + 6), wrong, 3);
    }
  }
  return sheet;
}

}  // namespace maskwatch
