#include "eval/calibration.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "util/error.h"

namespace maskwatch {

namespace {
// Outside this range a temperature means the validation set cannot tell (e.g. no errors).
constexpr double kMinTemperature = 0.25, kMaxTemperature = 10;
}  // namespace

Rows softmax_rows(const Rows& logits, double t) {
  Rows out;
  out.reserve(logits.size());
  for (const auto& row : logits) {
    const double mx = row.empty() ? 0.0 : *std::max_element(row.begin(), row.end());
    std::vector<double> e(row.size());
    double sum = 0;
    for (size_t c = 0; c < row.size(); ++c) sum += e[c] = std::exp((row[c] - mx) / t);
    std::vector<float> p(row.size());
    for (size_t c = 0; c < row.size(); ++c) p[c] = static_cast<float>(e[c] / sum);
    out.push_back(std::move(p));
  }
  return out;
}

Rows log_rows(const Rows& probs) {
  Rows out = probs;
  for (auto& row : out)
    for (auto& v : row) v = std::log(std::max(v, 1e-30f));
  return out;
}

double mean_nll(const Rows& logits, const std::vector<int>& labels, double t) {
  if (logits.size() != labels.size() || logits.empty()) throw Error("calibration: logits and labels differ in length");
  double nll = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    const auto& row = logits[i];
    const double mx = *std::max_element(row.begin(), row.end()) / t;
    double sum = 0;
    for (float v : row) sum += std::exp(v / t - mx);
    nll -= row.at(static_cast<size_t>(labels[i])) / t - mx - std::log(sum);
  }
  return nll / static_cast<double>(logits.size());
}

double fit_temperature(const Rows& logits, const std::vector<int>& labels) {
  // The NLL is unimodal in log T for these problems; golden-section search.
  double lo = std::log(kMinTemperature), hi = std::log(kMaxTemperature);
  const double g = (std::sqrt(5.0) - 1) / 2;
  double a = hi - g * (hi - lo), b = lo + g * (hi - lo);
  double fa = mean_nll(logits, labels, std::exp(a)), fb = mean_nll(logits, labels, std::exp(b));
  for (int it = 0; it < 80 && hi - lo > 1e-6; ++it) {
    if (fa < fb) {
      hi = b;
      b = a;
      fb = fa;
      a = hi - g * (hi - lo);
      fa = mean_nll(logits, labels, std::exp(a));
    } else {
      lo = a;
      a = b;
      fa = fb;
      b = lo + g * (hi - lo);
      fb = mean_nll(logits, labels, std::exp(b));
    }
  }
  return std::exp((lo + hi) / 2);
}

Reliability reliability(const Rows& probs, const std::vector<int>& labels, int bins) {
  if (probs.size() != labels.size()) throw Error("calibration: probabilities and labels differ in length");
  Reliability r;
  std::vector<double> conf(static_cast<size_t>(bins), 0), correct(static_cast<size_t>(bins), 0);
  r.count.assign(static_cast<size_t>(bins), 0);
  for (size_t i = 0; i < probs.size(); ++i) {
    const auto& p = probs[i];
    const auto best = std::max_element(p.begin(), p.end());
    const double c = *best;
    const size_t b = std::min(static_cast<size_t>(bins - 1), static_cast<size_t>(c * bins));
    conf[b] += c;
    correct[b] += (best - p.begin()) == labels[i];
    ++r.count[b];
  }
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (size_t b = 0; b < static_cast<size_t>(bins); ++b) {
    const int n = r.count[b];
    r.confidence.push_back(n ? conf[b] / n : nan);
    r.accuracy.push_back(n ? correct[b] / n : nan);
    if (n) r.ece += std::abs(correct[b] / n - conf[b] / n) * n / static_cast<double>(probs.size());
  }
  return r;
}

}  // namespace maskwatch
