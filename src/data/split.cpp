#include "data/split.h"

#include <algorithm>
#include <map>

#include "data/augment.h"
#include "util/error.h"

namespace maskwatch {

const char* split_name(Split s) {
  switch (s) {
    case Split::Train: return "train";
    case Split::Val: return "val";
    case Split::Test: return "test";
  }
  return "?";
}

std::vector<Split> split_groups(const std::vector<int>& labels, const std::vector<int>& groups, int num_classes,
                                const SplitFractions& f, uint64_t seed) {
  if (labels.size() != groups.size()) throw Error("split: labels and groups differ in length");
  if (f.train <= 0 || f.val < 0 || f.test < 0 || std::abs(f.train + f.val + f.test - 1.0) > 1e-6)
    throw Error("split fractions must be positive and sum to 1");
  // Members and per-class counts of each group.
  std::map<int, std::vector<size_t>> members;
  for (size_t i = 0; i < groups.size(); ++i) members[groups[i]].push_back(i);
  struct Group {
    std::vector<size_t> items;
    std::vector<int> per_class;
    uint64_t order;  // seeded tie-breaker
  };
  std::vector<Group> gs;
  for (auto& [id, items] : members) {
    Group g{items, std::vector<int>(static_cast<size_t>(num_classes), 0), mix_seed(seed, static_cast<uint64_t>(id))};
    for (size_t i : items) ++g.per_class.at(static_cast<size_t>(labels[i]));
    gs.push_back(std::move(g));
  }
  std::sort(gs.begin(), gs.end(), [](const Group& a, const Group& b) {
    return a.items.size() != b.items.size() ? a.items.size() > b.items.size() : a.order < b.order;
  });

  std::vector<int> class_total(static_cast<size_t>(num_classes), 0);
  for (int l : labels) ++class_total.at(static_cast<size_t>(l));
  const double frac[3] = {f.train, f.val, f.test};
  std::vector<std::vector<double>> have(3, std::vector<double>(static_cast<size_t>(num_classes), 0.0));
  std::vector<Split> out(labels.size(), Split::Train);
  for (const auto& g : gs) {
    int best = 0;
    double best_score = -1e300;
    for (int s = 0; s < 3; ++s) {
      if (frac[s] <= 0) continue;
      // How far below its target this split is for the group's classes (relative deficit),
      // weighted by how many of the group's items have that class.
      double score = 0;
      for (int c = 0; c < num_classes; ++c) {
        const size_t ci = static_cast<size_t>(c);
        if (!g.per_class[ci]) continue;
        const double target = frac[s] * class_total[ci];
        score += g.per_class[ci] * (target - have[static_cast<size_t>(s)][ci]) / std::max(1.0, target);
      }
      if (score > best_score) {
        best_score = score;
        best = s;
      }
    }
    for (int c = 0; c < num_classes; ++c)
      have[static_cast<size_t>(best)][static_cast<size_t>(c)] += g.per_class[static_cast<size_t>(c)];
    for (size_t i : g.items) out[i] = static_cast<Split>(best);
  }
  return out;
}

}  // namespace maskwatch
