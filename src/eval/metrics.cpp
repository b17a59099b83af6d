#include "eval/metrics.h"

#include "util/error.h"

namespace maskwatch {

ClassificationReport classification_report(const std::vector<int>& truth, const std::vector<int>& predicted,
                                           const std::vector<std::string>& classes) {
  if (truth.size() != predicted.size()) throw Error("metrics: truth and predictions differ in length");
  const size_t k = classes.size();
  ClassificationReport r;
  r.classes = classes;
  r.n = static_cast<int>(truth.size());
  r.confusion.assign(k, std::vector<int>(k, 0));
  int correct = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    if (truth[i] < 0 || static_cast<size_t>(truth[i]) >= k || predicted[i] < 0 ||
        static_cast<size_t>(predicted[i]) >= k)
      throw Error("metrics: class index out of range");
    ++r.confusion[static_cast<size_t>(truth[i])][static_cast<size_t>(predicted[i])];
    correct += truth[i] == predicted[i];
  }
  r.accuracy = r.n ? static_cast<double>(correct) / r.n : 0.0;
  double recall_sum = 0;
  int present = 0;
  for (size_t c = 0; c < k; ++c) {
    ClassMetrics m;
    int predicted_c = 0;
    for (size_t t = 0; t < k; ++t) {
      m.n += r.confusion[c][t];
      predicted_c += r.confusion[t][c];
    }
    const int tp = r.confusion[c][c];
    m.precision = predicted_c ? static_cast<double>(tp) / predicted_c : 0.0;
    m.recall = m.n ? static_cast<double>(tp) / m.n : 0.0;
    m.f1 = (m.precision + m.recall) > 0 ? 2 * m.precision * m.recall / (m.precision + m.recall) : 0.0;
    if (m.n) {
      recall_sum += m.recall;
      ++present;
    }
    r.per_class.push_back(m);
  }
  r.balanced_accuracy = present ? recall_sum / present : 0.0;
  return r;
}

nlohmann::json ClassificationReport::to_json() const {
  // A rate with nothing to count (no image of the class: recall and f1; no answer of it:
  // precision) is null, as the console's n/a: 0.0 read as a class never found.
  nlohmann::json per = nlohmann::json::object();
  for (size_t c = 0; c < classes.size(); ++c) {
    int answered = 0;
    for (const auto& row : confusion) answered += row[c];
    const ClassMetrics& m = per_class[c];
    const auto rate = [](double v, bool defined) { return defined ? nlohmann::json(v) : nlohmann::json(); };
    per[classes[c]] = {
        {"precision", rate(m.precision, answered > 0)}, {"recall", rate(m.recall, m.n > 0)},
        {"f1", rate(m.f1, m.n > 0)}, {"n", m.n}};
  }
  return {{"n", n},           {"accuracy", accuracy},   {"balanced_accuracy", balanced_accuracy},
          {"per_class", per}, {"confusion", confusion}, {"classes", classes}};
}

std::map<std::string, ClassificationReport> grouped_reports(const std::vector<int>& truth,
                                                            const std::vector<int>& predicted,
                                                            const std::vector<std::string>& group,
                                                            const std::vector<std::string>& classes) {
  if (group.size() != truth.size()) throw Error("metrics: groups and truth differ in length");
  std::map<std::string, std::pair<std::vector<int>, std::vector<int>>> parts;
  for (size_t i = 0; i < truth.size(); ++i) {
    parts[group[i]].first.push_back(truth[i]);
    parts[group[i]].second.push_back(predicted.at(i));
  }
  std::map<std::string, ClassificationReport> out;
  for (const auto& [name, p] : parts) out[name] = classification_report(p.first, p.second, classes);
  return out;
}

nlohmann::json grouped_reports_json(const std::map<std::string, ClassificationReport>& reports) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, r] : reports) {
    auto e = r.to_json();
    e.erase("classes");
    j[name] = e;
  }
  return j;
}

}  // namespace maskwatch
