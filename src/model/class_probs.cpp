#include "model/class_probs.h"

namespace maskwatch {

std::vector<float> fold_probs(const std::vector<float>& probs, const std::vector<int>& of_model, size_t n_classes) {
  std::vector<float> out(n_classes, 0.0f);
  for (size_t m = 0; m < probs.size() && m < of_model.size(); ++m)
    if (of_model[m] >= 0 && static_cast<size_t>(of_model[m]) < n_classes)
      out[static_cast<size_t>(of_model[m])] += probs[m];
  return out;
}

}  // namespace maskwatch
