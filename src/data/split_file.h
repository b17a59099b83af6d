// split.json: which file went to train / val / test (and its near-duplicate group), with the
// data manifest hash, so a resumed run or a later evaluation uses exactly the same split.
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/split.h"

namespace maskwatch {

struct SplitAssignment {
  std::vector<Split> split;  // per dataset item
  std::vector<int> group;
};

// `extra` (seed, fractions, dedup summary, leak report) is merged into the file.
nlohmann::json split_to_json(const Dataset& ds, const SplitAssignment& a, const nlohmann::json& extra);
// Throws Error when the file does not describe exactly this dataset (manifest hash differs).
SplitAssignment split_from_json(const nlohmann::json& j, const Dataset& ds, const std::string& origin);
// Per split, per class counts: {"train": {"with_mask": n, ...}, ...}
nlohmann::json split_counts(const Dataset& ds, const std::vector<Split>& split);
// {"train": {source: {class: n}}, ...}
nlohmann::json split_counts_by_source(const Dataset& ds, const std::vector<Split>& split);

// Rel names of the items in one split, read from a split.json (for `eval --split`).
std::vector<std::string> split_members(const nlohmann::json& j, Split which, const std::string& origin);

// Scene images (file names) whose every face crop in the split file at `split` is in its test
// subset: the classifier never trained on a crop of them (`eval --scenes --split`), and the
// face detector is not fine-tuned on them (`train-faces --split`). Crops are named
// <source>__JPEGImages_<scene stem>_<k>.jpg. Throws Error when the test subset has none.
std::set<std::string> unseen_scenes(const std::string& split);

}  // namespace maskwatch
