#include "model/face_quality.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <opencv2/imgproc.hpp>

#include "model/class_probs.h"
#include "util/error.h"

namespace maskwatch {

FaceQuality measure_face_quality(const cv::Mat& bgr) {
  if (bgr.empty() || bgr.type() != CV_8UC3) throw Error("face quality needs a non-empty 8-bit BGR crop");
  // The centre two thirds: the face itself, without the margin of hair, collar and background.
  const int x0 = bgr.cols / 6, y0 = bgr.rows / 6;
  const cv::Rect face(x0, y0, std::max(1, bgr.cols - 2 * x0), std::max(1, bgr.rows - 2 * y0));
  // Luma from float BGR: finer than whole grey levels, so small noise is told apart smoothly.
  cv::Mat bgr_f, grey, lap, median, residual;
  bgr(face).convertTo(bgr_f, CV_32F, 1.0 / 255);
  cv::cvtColor(bgr_f, grey, cv::COLOR_BGR2GRAY);
  FaceQuality q;
  cv::Scalar mean, dev;
  cv::meanStdDev(grey, mean, dev);
  q.luma = mean[0];
  q.contrast = std::log10(dev[0] + 1e-4);
  cv::Laplacian(grey, lap, CV_32F, 3);
  cv::meanStdDev(lap, mean, dev);
  q.sharpness = std::log10(dev[0] * dev[0] + 1e-8);
  // Noise: the median absolute residual of a 3x3 median filter (x 1.4826: a Gaussian's
  // sigma), robust to the edges a mean of squares would count.
  cv::medianBlur(grey, median, 3);
  cv::absdiff(grey, median, residual);
  // Its median from a fine histogram (residuals over a quarter of full scale share the last
  // bin; the median is far below that): linear time, where nth_element took half the cost.
  constexpr int kBins = 4096;
  constexpr float kTop = 0.25f;
  std::array<int, kBins> hist{};
  for (int y = 0; y < residual.rows; ++y) {
    const float* r = residual.ptr<float>(y);
    for (int x = 0; x < residual.cols; ++x) ++hist[static_cast<size_t>(std::min(kBins - 1, static_cast<int>(r[x] * (kBins / kTop))))];
  }
  const auto half = static_cast<long>(residual.total() / 2);
  long seen = 0;
  int bin = 0;
  while (bin < kBins - 1 && (seen += hist[static_cast<size_t>(bin)]) <= half) ++bin;
  q.noise = std::log10(1.4826 * (bin + 0.5) * (kTop / kBins) + 1e-3);
  const int dark = cv::countNonZero(grey < 0.02f), bright = cv::countNonZero(grey > 0.98f);
  q.clipped = static_cast<double>(dark + bright) / static_cast<double>(grey.total());
  return q;
}

cv::Mat smoothed_if_noisy(const cv::Mat& sized, const FaceQuality& q) {
  if (q.noise < kNoisyFace) return sized;
  const double sigma = std::max(sized.cols, sized.rows) / 160.0;
  cv::Mat out;
  cv::GaussianBlur(sized, out, cv::Size(), sigma, sigma, cv::BORDER_REFLECT);
  return out;
}

double class_margin(const std::vector<float>& probs) {
  if (probs.size() < 2) return 0;
  std::vector<float> p(probs);
  std::partial_sort(p.begin(), p.begin() + 2, p.end(), std::greater<>());
  const double hi = std::max(1e-12, static_cast<double>(p[0])), lo = std::max(1e-12, static_cast<double>(p[1]));
  return std::clamp(std::log(hi / lo), 0.0, 12.0);
}

const std::vector<std::string>& gate_input_names() {
  static const std::vector<std::string> names = {"margin", "luma", "contrast", "sharpness", "noise", "clipped"};
  return names;
}

std::vector<double> gate_inputs(const FaceQuality& q, const std::vector<float>& probs) {
  return {class_margin(probs), q.luma, q.contrast, q.sharpness, q.noise, q.clipped};
}

double QualityGate::p_right(const std::vector<double>& x) const {
  if (!enabled()) return 1;
  double z = bias;
  for (size_t i = 0; i < weights.size() && i < x.size(); ++i) z += weights[i] * (x[i] - mean[i]) / scale[i];
  return 1.0 / (1.0 + std::exp(-z));
}

double QualityGate::p_right(const FaceQuality& q, const std::vector<float>& probs) const {
  // (from_json checked that judged_of_model covers the model's classes, which is what probs holds)
  if (judged_of_model.empty() || judged_of_model.size() != probs.size()) return p_right(gate_inputs(q, probs));
  return p_right(gate_inputs(q, fold_probs(probs, judged_of_model, judged_classes.size())));
}

nlohmann::json QualityGate::to_json() const {
  nlohmann::json j = {{"inputs", gate_input_names()}, {"mean", mean},           {"scale", scale}, {"weights", weights},
                      {"bias", bias},                 {"threshold", threshold}, {"fit", fit},
                      {"note", "P(right) = sigmoid(bias + sum weights * (input - mean) / scale); "
                               "answered when P(right) >= threshold, else uncertain"}};
  if (!judged_of_model.empty()) j["judges"] = {{"classes", judged_classes}, {"of_model", judged_of_model}};
  return j;
}

QualityGate QualityGate::from_json(const nlohmann::json& j, const std::string& origin, size_t model_classes) {
  const auto bad = [&](const std::string& why) { return Error(fmt::format("quality gate in {}: {}", origin, why)); };
  if (!j.is_object()) throw bad("not a JSON object");
  try {
    if (j.at("inputs").get<std::vector<std::string>>() != gate_input_names())
      throw bad(fmt::format("inputs are not {} (a gate from another maskwatch version: fit it again)",
                            fmt::join(gate_input_names(), ", ")));
    QualityGate g;
    g.mean = j.at("mean").get<std::vector<double>>();
    g.scale = j.at("scale").get<std::vector<double>>();
    g.weights = j.at("weights").get<std::vector<double>>();
    g.bias = j.at("bias").get<double>();
    g.threshold = j.at("threshold").get<double>();
    g.fit = j.value("fit", nlohmann::json::object());
    const size_t n = gate_input_names().size();
    if (g.mean.size() != n || g.scale.size() != n || g.weights.size() != n)
      throw bad(fmt::format("mean, scale and weights need {} numbers each", n));
    for (size_t i = 0; i < n; ++i)
      if (!std::isfinite(g.mean[i]) || !std::isfinite(g.weights[i]) || !(g.scale[i] > 0))
        throw bad(fmt::format("input '{}' has a non-finite mean or weight or a scale <= 0", gate_input_names()[i]));
    if (!std::isfinite(g.bias) || !(g.threshold >= 0 && g.threshold < 1)) throw bad("bias or threshold out of range");
    if (j.contains("judges")) {
      g.judged_classes = j["judges"].at("classes").get<std::vector<std::string>>();
      g.judged_of_model = j["judges"].at("of_model").get<std::vector<int>>();
      std::vector<bool> used(g.judged_classes.size(), false);
      for (const int c : g.judged_of_model) {
        if (c < 0 || static_cast<size_t>(c) >= g.judged_classes.size())
          throw bad(fmt::format("judges.of_model names class {} of {}", c, g.judged_classes.size()));
        used[static_cast<size_t>(c)] = true;
      }
      if (g.judged_of_model.size() != model_classes || g.judged_classes.size() < 2 ||
          std::find(used.begin(), used.end(), false) != used.end())
        throw bad(fmt::format("judges.of_model must map the model's {} classes onto every one of at least two "
                              "judged classes",
                              model_classes));
    }
    return g;
  } catch (const nlohmann::json::exception& e) {
    throw bad(e.what());
  }
}

}  // namespace maskwatch
