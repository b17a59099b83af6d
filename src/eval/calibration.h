// Calibrated confidence: temperature scaling (Guo et al., "On Calibration of Modern Neural
// Networks", 2017). Probabilities become softmax(logits / T) with one T > 0 fitted on the
// validation split by minimising the negative log-likelihood; T > 1 softens an
// over-confident model. Expected calibration error (ECE) and reliability bins measure it.
#pragma once
#include <vector>

namespace maskwatch {

using Rows = std::vector<std::vector<float>>;  // one row per item

Rows softmax_rows(const Rows& logits, double temperature = 1.0);
// Natural log of probabilities (for models that output probabilities): log p is a valid
// logit vector, since softmax(log p) = p.
Rows log_rows(const Rows& probs);

// Mean negative log-likelihood of labels under softmax(logits / T).
double mean_nll(const Rows& logits, const std::vector<int>& labels, double temperature);

// T minimising mean_nll, searched on log T in [0.25, 10] (golden section).
double fit_temperature(const Rows& logits, const std::vector<int>& labels);

struct Reliability {
  std::vector<double> confidence, accuracy;  // per bin (mean top-1 confidence, accuracy); NaN if empty
  std::vector<int> count;
  double ece = 0;  // sum over bins of |accuracy - confidence| x share of items
};

// Top-1 confidence in `bins` equal-width bins over [0, 1].
Reliability reliability(const Rows& probs, const std::vector<int>& labels, int bins = 10);

}  // namespace maskwatch
