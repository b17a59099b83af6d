// Classification metrics shared by the trainer (val/test) and `maskwatch eval`.
#pragma once
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace maskwatch {

struct ClassMetrics {
  double precision = 0, recall = 0, f1 = 0;
  int n = 0;  // true items of this class
};

struct ClassificationReport {
  std::vector<std::string> classes;
  int n = 0;
  double accuracy = 0, balanced_accuracy = 0;
  std::vector<ClassMetrics> per_class;
  std::vector<std::vector<int>> confusion;  // rows = true class, cols = predicted

  nlohmann::json to_json() const;  // n, accuracy, balanced_accuracy, per_class{name: ...}, confusion
};

// truth[i], predicted[i] are class indices. Classes with no true items are left out of the
// balanced accuracy (it averages recall over classes present).
ClassificationReport classification_report(const std::vector<int>& truth, const std::vector<int>& predicted,
                                           const std::vector<std::string>& classes);

// One report per group (e.g. data source): group[i] names item i's group.
std::map<std::string, ClassificationReport> grouped_reports(const std::vector<int>& truth,
                                                            const std::vector<int>& predicted,
                                                            const std::vector<std::string>& group,
                                                            const std::vector<std::string>& classes);
nlohmann::json grouped_reports_json(const std::map<std::string, ClassificationReport>& reports);

}  // namespace maskwatch
