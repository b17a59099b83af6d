// Scoring a model on fewer classes than it has: `eval --map FROM=TO` where FROM is one of the
// model's classes, e.g. a three-class model's mask_worn_incorrectly scored as without_mask in
// the two-class protocol. Without it the folded class's images all counted as wrong (a chin
// mask the model named "mask below nose" scored as missed: 4.9 % where 86.9 % were right).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "model/class_probs.h"  // fold_probs

namespace maskwatch {

struct Prediction;

struct ClassFold {
  std::vector<std::string> classes;  // evaluated: the model's, in its order, less the folded ones
  std::vector<int> of_model;         // model class index -> evaluated class index

  // Throws Error when a map folds a model class into a name that is not a model class.
  static ClassFold make(const std::vector<std::string>& model_classes, const std::map<std::string, std::string>& map);
  bool folds() const { return classes.size() != of_model.size(); }
  // The label becomes the model's top class, folded: what the overlay shows, and how eval
  // --scenes scores a worn-incorrectly face. Its score and probs become the folded classes'
  // summed probabilities.
  void apply(Prediction& p) const;
};

// What the consumers count (a mask worn or not): every class but the mask class folded into
// without_mask (or, without one, into the first other class). Folds nothing for two classes.
ClassFold compliance_fold(const std::vector<std::string>& model_classes, int mask_class);

}  // namespace maskwatch
