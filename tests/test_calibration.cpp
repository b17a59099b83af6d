// Temperature scaling and calibration error on cases with known answers.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "eval/calibration.h"
#include "eval/metrics.h"

using namespace maskwatch;

TEST(Calibration, RecoversTheTemperatureThatGeneratedTheLabels) {
  // Labels drawn from softmax(z / 2): the NLL-optimal temperature for logits z is 2.
  std::mt19937 rng(3);
  std::normal_distribution<float> z(0, 4);
  std::uniform_real_distribution<double> u(0, 1);
  Rows logits;
  std::vector<int> labels;
  for (int i = 0; i < 20000; ++i) {
    const std::vector<float> row = {z(rng), z(rng)};
    const double p1 = 1 / (1 + std::exp(-(row[1] - row[0]) / 2.0));
    logits.push_back(row);
    labels.push_back(u(rng) < p1 ? 1 : 0);
  }
  const double t = fit_temperature(logits, labels);
  EXPECT_NEAR(t, 2.0, 0.1);
  EXPECT_LT(mean_nll(logits, labels, t), mean_nll(logits, labels, 1.0));
  // Over-confident logits have a large calibration error that the temperature removes.
  const auto before = reliability(softmax_rows(logits), labels), after = reliability(softmax_rows(logits, t), labels);
  EXPECT_GT(before.ece, 0.05);
  EXPECT_LT(after.ece, 0.02);
}

TEST(Calibration, EceByHand) {
  // Two bins used: confidence 0.95 (2 items, 1 right) and 0.65 (2 items, 2 right).
  const Rows probs = {{0.95f, 0.05f}, {0.95f, 0.05f}, {0.35f, 0.65f}, {0.35f, 0.65f}};
  const std::vector<int> labels = {0, 1, 1, 1};
  const auto r = reliability(probs, labels, 10);
  EXPECT_NEAR(r.ece, 0.5 * std::abs(0.5 - 0.95) + 0.5 * std::abs(1.0 - 0.65), 1e-6);
  EXPECT_EQ(r.count[9], 2);
  EXPECT_EQ(r.count[6], 2);
  EXPECT_TRUE(std::isnan(r.accuracy[0]));
  // softmax(log p) gives p back.
  const auto back = softmax_rows(log_rows(probs));
  EXPECT_NEAR(back[2][1], 0.65f, 1e-6);
}

TEST(Metrics, ReportsPerGroup) {
  const std::vector<int> truth = {0, 0, 1, 1, 0, 1}, pred = {0, 1, 1, 1, 0, 0};
  const std::vector<std::string> group = {"a", "a", "a", "a", "b", "b"};
  const auto r = grouped_reports(truth, pred, group, {"with_mask", "without_mask"});
  ASSERT_EQ(r.size(), 2u);
  EXPECT_NEAR(r.at("a").accuracy, 0.75, 1e-12);
  EXPECT_NEAR(r.at("a").balanced_accuracy, (0.5 + 1.0) / 2, 1e-12);
  EXPECT_NEAR(r.at("b").balanced_accuracy, (1.0 + 0.0) / 2, 1e-12);
  // A class with no image has no recall, one never answered no precision: null in JSON, not 0.
  const auto j = classification_report({0, 0, 0}, {0, 0, 0}, {"with_mask", "without_mask"}).to_json();
  EXPECT_EQ(j["per_class"]["with_mask"]["recall"], 1.0);
  EXPECT_EQ(j["per_class"]["with_mask"]["precision"], 1.0);
  EXPECT_TRUE(j["per_class"]["without_mask"]["recall"].is_null()) << j;
  EXPECT_TRUE(j["per_class"]["without_mask"]["precision"].is_null()) << j;
  EXPECT_TRUE(j["per_class"]["without_mask"]["f1"].is_null()) << j;
  EXPECT_EQ(j["per_class"]["without_mask"]["n"], 0);
}
