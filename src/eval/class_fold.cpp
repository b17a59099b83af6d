#include "eval/class_fold.h"

#include <fmt/format.h>

#include <algorithm>

#include "util/error.h"
#include "vision/mask_classifier.h"

namespace maskwatch {

ClassFold ClassFold::make(const std::vector<std::string>& model_classes,
                          const std::map<std::string, std::string>& map) {
  ClassFold f;
  const auto is_model_class = [&](const std::string& c) {
    return std::find(model_classes.begin(), model_classes.end(), c) != model_classes.end();
  };
  for (const auto& c : model_classes) {
    const auto m = map.find(c);
    if (m == map.end() || m->second == c) {
      f.classes.push_back(c);
    } else if (!is_model_class(m->second)) {
      throw Error(fmt::format("--map {}={}: '{}' is a class of the model, '{}' is not (model classes: {})", c,
                              m->second, c, m->second, fmt::join(model_classes, ", ")));
    }
  }
  for (const auto& c : model_classes) {
    const auto m = map.find(c);
    const std::string& to = m == map.end() ? c : m->second;
    const auto at = std::find(f.classes.begin(), f.classes.end(), to);
    if (at == f.classes.end())  // folded into a class that is itself folded away
      throw Error(fmt::format("--map {}={}: '{}' is folded into another class too", c, to, to));
    f.of_model.push_back(static_cast<int>(at - f.classes.begin()));
  }
  if (f.classes.size() < 2 && model_classes.size() >= 2)  // every answer would be right
    throw Error(fmt::format("--map folds every class of the model into '{}': nothing is left to tell apart",
                            f.classes.empty() ? std::string("?") : f.classes.front()));
  return f;
}

void ClassFold::apply(Prediction& p) const {
  if (!folds()) return;
  if (p.label >= 0) p.label = of_model.at(static_cast<size_t>(p.label));
  p.probs = fold_probs(p.probs, of_model, classes.size());
  if (p.label >= 0) p.score = p.probs[static_cast<size_t>(p.label)];
}

ClassFold compliance_fold(const std::vector<std::string>& model_classes, int mask_class) {
  std::map<std::string, std::string> map;
  std::string into;  // without_mask, else the first class that is not the mask class
  for (size_t c = 0; c < model_classes.size(); ++c)
    if (static_cast<int>(c) != mask_class && (into.empty() || model_classes[c] == "without_mask"))
      into = model_classes[c];
  for (size_t c = 0; c < model_classes.size(); ++c)
    if (static_cast<int>(c) != mask_class) map[model_classes[c]] = into;
  return ClassFold::make(model_classes, map);
}

}  // namespace maskwatch
