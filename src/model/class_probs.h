// Class probabilities summed into fewer classes: how a three-class model's answer is read as
// the two classes the product counts (eval's --map, the quality gate's judged classes).
#pragma once
#include <cstddef>
#include <vector>

namespace maskwatch {

// Model class probabilities -> folded class probabilities: each adds to its class
// of_model[m] (of n_classes), or is dropped where that is -1.
std::vector<float> fold_probs(const std::vector<float>& probs, const std::vector<int>& of_model, size_t n_classes);

}  // namespace maskwatch
