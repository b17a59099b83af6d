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

// labels[i] (the stratum: source x class in training), groups[i] (arbitrary ids) and keys[i]
// (a stable name of the item: its path in the dataset) per item. Same inputs and seed give
// the same answer on every platform.
//
// Stable under small regroupings: a group is known by its smallest member key, not by its
// id, and is placed by a seeded hash of that key. Each stratum's groups (a group belongs to
// the stratum most of its items are in) are laid out in hash order and cut at the fractions
// of their image count, so a group that splits, merges or changes size moves only itself
// and the groups at the cuts. (The earlier greedy assignment, largest group first, let one
// group more or less on another CPU move 4,915 of 11,574 images to another split.)
std::vector<Split> split_groups(const std::vector<int>& labels, const std::vector<int>& groups,
                                const std::vector<std::string>& keys, int num_classes, const SplitFractions& fractions,
                                uint64_t seed);

}  // namespace maskwatch
