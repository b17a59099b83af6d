#include "data/split.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "util/error.h"
#include "util/seed.h"

namespace maskwatch {

const char* split_name(Split s) {
  switch (s) {
    case Split::Train: return "train";
    case Split::Val: return "val";
    case Split::Test: return "test";
  }
  return "?";
}

namespace {

// FNV-1a with the standard 64-bit offset basis (util's fnv1a() drops its last digit; changing
// either would move every split made since, and the README's measurements with them).
uint64_t key_hash(const std::string& key) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : key) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

struct Group {
  std::vector<size_t> items;
  std::string key;  // smallest member key: the group's identity
  uint64_t rank = 0;
};

}  // namespace

std::vector<Split> split_groups(const std::vector<int>& labels, const std::vector<int>& groups,
                                const std::vector<std::string>& keys, int num_classes, const SplitFractions& f,
                                uint64_t seed) {
  if (labels.size() != groups.size() || labels.size() != keys.size())
    throw Error("split: labels, groups and keys differ in length");
  if (f.train <= 0 || f.val < 0 || f.test < 0 || std::abs(f.train + f.val + f.test - 1.0) > 1e-6)
    throw Error("split fractions must be positive and sum to 1");
  for (int l : labels)
    if (l < 0 || l >= num_classes) throw Error("split: a label is outside 0.." + std::to_string(num_classes - 1));

  std::map<int, Group> by_id;
  for (size_t i = 0; i < groups.size(); ++i) {
    auto& g = by_id[groups[i]];
    if (g.items.empty() || keys[i] < g.key) g.key = keys[i];
    g.items.push_back(i);
  }
  std::vector<std::vector<Group>> per_stratum(static_cast<size_t>(num_classes));
  for (auto& [id, g] : by_id) {
    std::vector<int> count(static_cast<size_t>(num_classes), 0);
    for (size_t i : g.items) ++count[static_cast<size_t>(labels[i])];
    const auto stratum = std::max_element(count.begin(), count.end()) - count.begin();  // first of ties
    g.rank = mix_seed(seed, key_hash(g.key));
    per_stratum[static_cast<size_t>(stratum)].push_back(std::move(g));
  }

  std::vector<Split> out(labels.size(), Split::Train);
  for (auto& gs : per_stratum) {
    std::sort(gs.begin(), gs.end(),
              [](const Group& a, const Group& b) { return a.rank != b.rank ? a.rank < b.rank : a.key < b.key; });
    double total = 0;
    for (const auto& g : gs) total += static_cast<double>(g.items.size());
    double before = 0;
    for (const auto& g : gs) {
      // Where the group's middle image falls along the stratum decides its split.
      const double mid = (before + 0.5 * static_cast<double>(g.items.size())) / total;
      before += static_cast<double>(g.items.size());
      const Split s = mid < f.train ? Split::Train : mid < f.train + f.val ? Split::Val : Split::Test;
      for (size_t i : g.items) out[i] = s;
    }
  }
  return out;
}

}  // namespace maskwatch
