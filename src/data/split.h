// Deterministic, stratified, group-aware train/val/test split. Items in one group (near
// duplicates of each other) always land in the same split, so the test split measures
// generalisation instead of recall of training images.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace maskwatch {

enum class Split : int { Train = 0, Val = 1, Test = 2 };
const char* split_name(Split s);

struct SplitFractions {
  double train = 0.70, val = 0.15, test = 0.15;
};

// labels[i], groups[i] per item (group ids are arbitrary ints). Same inputs and seed give
// the same answer on every platform. Each split's per-class count approaches its fraction;
// groups are assigned whole, largest first, to the split that most lacks their classes.
std::vector<Split> split_groups(const std::vector<int>& labels, const std::vector<int>& groups, int num_classes,
                                const SplitFractions& fractions, uint64_t seed);

}  // namespace maskwatch
