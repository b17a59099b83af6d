#include <gtest/gtest.h>

#include <map>
#include <set>

#include "data/split.h"

using namespace maskwatch;

namespace {
std::vector<int> labels_of(int per_class, int classes) {
  std::vector<int> l;
  for (int c = 0; c < classes; ++c)
    for (int i = 0; i < per_class; ++i) l.push_back(c);
  return l;
}
}  // namespace

TEST(Split, DeterministicForASeedAndDifferentForAnother) {
  const auto labels = labels_of(100, 2);
  std::vector<int> groups(labels.size());
  for (size_t i = 0; i < groups.size(); ++i) groups[i] = static_cast<int>(i / 3);
  const auto a = split_groups(labels, groups, 2, {}, 1);
  const auto b = split_groups(labels, groups, 2, {}, 1);
  const auto c = split_groups(labels, groups, 2, {}, 2);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST(Split, StratifiedToTheFractions) {
  const auto labels = labels_of(400, 3);
  std::vector<int> groups(labels.size());
  for (size_t i = 0; i < groups.size(); ++i) groups[i] = static_cast<int>(i);
  const auto s = split_groups(labels, groups, 3, {}, 9);
  int count[3][3] = {};
  for (size_t i = 0; i < s.size(); ++i) ++count[labels[i]][static_cast<int>(s[i])];
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(count[c][0], 280, 1);
    EXPECT_NEAR(count[c][1], 60, 1);
    EXPECT_NEAR(count[c][2], 60, 1);
  }
}

TEST(Split, GroupsNeverCrossSplits) {
  const auto labels = labels_of(300, 2);
  std::vector<int> groups(labels.size());
  for (size_t i = 0; i < groups.size(); ++i) groups[i] = static_cast<int>((i * 7919) % 97);  // 97 mixed groups
  const auto s = split_groups(labels, groups, 2, {}, 4);
  std::map<int, std::set<int>> seen;
  for (size_t i = 0; i < s.size(); ++i) seen[groups[i]].insert(static_cast<int>(s[i]));
  for (const auto& [g, splits] : seen) EXPECT_EQ(splits.size(), 1u) << "group " << g;
  // Still roughly proportional with groups of ~6.
  const auto tests = std::count(s.begin(), s.end(), Split::Test);
  EXPECT_NEAR(static_cast<double>(tests) / s.size(), 0.15, 0.04);
}

TEST(Split, RefusesBadFractions) {
  const auto labels = labels_of(10, 2);
  std::vector<int> groups(labels.size(), 0);
  EXPECT_ANY_THROW(split_groups(labels, groups, 2, {0.5, 0.2, 0.2}, 1));
  EXPECT_ANY_THROW(split_groups(labels, groups, 2, {0.0, 0.5, 0.5}, 1));
}
