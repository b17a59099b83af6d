#include "eval/plots.h"

#include <fmt/format.h>

#include <cmath>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "util/error.h"
#include "util/files.h"

namespace maskwatch {
namespace {

const cv::Scalar kInk(40, 40, 40), kGrid(225, 225, 225), kWhite(255, 255, 255);
constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;

void text(cv::Mat& img, const std::string& s, cv::Point at, double scale = 0.45, cv::Scalar color = kInk,
          int thickness = 1, bool center = false, bool right = false) {
  int base = 0;
  const cv::Size sz = cv::getTextSize(s, kFont, scale, thickness, &base);
  if (center) at.x -= sz.width / 2;
  if (right) at.x -= sz.width;
  cv::putText(img, s, at, kFont, scale, color, thickness, cv::LINE_AA);
}

void dashed_vline(cv::Mat& img, int x, int y0, int y1, cv::Scalar color) {
  for (int y = y0; y < y1; y += 8) cv::line(img, {x, y}, {x, std::min(y + 4, y1)}, color, 1, cv::LINE_AA);
}

void draw_panel(cv::Mat& img, cv::Rect area, const CurvePanel& p, int marker_epoch, const std::string& marker_label) {
  const int left = 60, right = 15, top = 45, bottom = 45;
  const cv::Rect plot(area.x + left, area.y + top, area.width - left - right, area.height - top - bottom);
  size_t epochs = 0;
  double lo = 1e300, hi = -1e300;
  for (const auto& s : p.series) {
    epochs = std::max(epochs, s.values.size());
    for (double v : s.values)
      if (std::isfinite(v)) {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
  }
  if (lo > hi) lo = 0, hi = 1;
  if (p.percent) hi = std::min(1.0, hi + 0.02), lo = std::max(0.0, lo - 0.02);
  else lo = std::max(0.0, lo - 0.05 * (hi - lo + 1e-9)), hi += 0.05 * (hi - lo + 1e-9);
  if (hi - lo < 1e-6) hi = lo + 1e-3;
  const int n = static_cast<int>(std::max<size_t>(epochs, 2));
  auto px = [&](double e) { return plot.x + static_cast<int>(std::lround((e - 1) / (n - 1) * plot.width)); };
  auto py = [&](double v) { return plot.y + plot.height - static_cast<int>(std::lround((v - lo) / (hi - lo) * plot.height)); };

  text(img, p.title, {area.x + area.width / 2, area.y + 20}, 0.6, kInk, 1, true);
  for (int t = 0; t <= 5; ++t) {  // y grid + ticks
    const double v = lo + (hi - lo) * t / 5;
    cv::line(img, {plot.x, py(v)}, {plot.x + plot.width, py(v)}, kGrid, 1);
    text(img, p.percent ? fmt::format("{:.1f}%", v * 100) : fmt::format("{:.3g}", v), {plot.x - 6, py(v) + 4}, 0.38,
         kInk, 1, false, true);
  }
  const int step = std::max(1, n / 10);
  for (int e = 1; e <= n; e += step) {  // x ticks
    cv::line(img, {px(e), plot.y + plot.height}, {px(e), plot.y + plot.height + 4}, kInk, 1);
    text(img, std::to_string(e), {px(e), plot.y + plot.height + 17}, 0.38, kInk, 1, true);
  }
  text(img, "epoch", {plot.x + plot.width / 2, plot.y + plot.height + 36}, 0.45, kInk, 1, true);
  cv::rectangle(img, plot, kInk, 1);
  int marker_x = -1;
  if (marker_epoch > 1 && marker_epoch <= n) {
    marker_x = (px(marker_epoch - 1) + px(marker_epoch)) / 2;
    dashed_vline(img, marker_x, plot.y, plot.y + plot.height, cv::Scalar(0, 0, 200));
  }
  for (const auto& s : p.series) {
    std::vector<cv::Point> pts;
    for (size_t i = 0; i < s.values.size(); ++i)
      if (std::isfinite(s.values[i])) pts.emplace_back(px(static_cast<double>(i + 1)), py(s.values[i]));
    if (pts.size() > 1) cv::polylines(img, pts, false, s.color, 2, cv::LINE_AA);
    for (const auto& pt : pts) cv::circle(img, pt, 3, s.color, cv::FILLED, cv::LINE_AA);
  }
  // Labels last, on white boxes, so curves never hide them.
  if (marker_x >= 0) {
    int base = 0;
    const cv::Size sz = cv::getTextSize(marker_label, kFont, 0.4, 1, &base);
    const cv::Rect box(std::min(marker_x + 4, plot.x + plot.width - sz.width - 6), plot.y - 20, sz.width + 6, 16);
    cv::rectangle(img, box, kWhite, cv::FILLED);
    text(img, marker_label, {box.x + 3, box.y + 12}, 0.4, cv::Scalar(0, 0, 200));
  }
  const int rows = static_cast<int>(p.series.size());
  const cv::Rect legend(plot.x + plot.width - 100, plot.y + plot.height - 10 - 16 * rows, 92, 16 * rows + 4);
  cv::rectangle(img, legend, kWhite, cv::FILLED);
  cv::rectangle(img, legend, kGrid, 1);
  int legend_y = legend.y + 14;
  for (const auto& s : p.series) {
    cv::line(img, {legend.x + 6, legend_y - 4}, {legend.x + 30, legend_y - 4}, s.color, 2);
    text(img, s.name, {legend.x + 36, legend_y}, 0.4);
    legend_y += 16;
  }
}

}  // namespace

cv::Mat draw_curves(const std::vector<CurvePanel>& panels, int marker_epoch, const std::string& marker_label) {
  const int w = 520, h = 380;
  cv::Mat img(h, w * static_cast<int>(std::max<size_t>(1, panels.size())), CV_8UC3, kWhite);
  for (size_t i = 0; i < panels.size(); ++i)
    draw_panel(img, cv::Rect(static_cast<int>(i) * w, 0, w, h), panels[i], marker_epoch, marker_label);
  return img;
}

cv::Mat draw_confusion(const std::vector<std::vector<int>>& confusion, const std::vector<std::string>& classes,
                       const std::string& title) {
  const int k = static_cast<int>(classes.size()), cell = std::max(70, 300 / std::max(1, k)), left = 150, top = 80;
  cv::Mat img(top + k * cell + 60, left + k * cell + 30, CV_8UC3, kWhite);
  text(img, title, {img.cols / 2, 28}, 0.6, kInk, 1, true);
  text(img, "predicted", {left + k * cell / 2, top - 30}, 0.45, kInk, 1, true);
  for (int r = 0; r < k; ++r) {
    int row_total = 0;
    for (int c = 0; c < k; ++c) row_total += confusion[static_cast<size_t>(r)][static_cast<size_t>(c)];
    for (int c = 0; c < k; ++c) {
      const int v = confusion[static_cast<size_t>(r)][static_cast<size_t>(c)];
      const double frac = row_total ? static_cast<double>(v) / row_total : 0.0;
      // Diagonal in blue, errors in red; stronger = larger share of the row.
      const cv::Scalar base = r == c ? cv::Scalar(190, 110, 40) : cv::Scalar(60, 60, 210);
      const cv::Scalar fill = kWhite * (1 - frac) + base * frac;
      const cv::Rect rc(left + c * cell, top + r * cell, cell, cell);
      cv::rectangle(img, rc, fill, cv::FILLED);
      cv::rectangle(img, rc, kInk, 1);
      const cv::Scalar ink = frac > 0.55 ? kWhite : kInk;
      text(img, std::to_string(v), {rc.x + cell / 2, rc.y + cell / 2}, 0.7, ink, 2, true);
      text(img, fmt::format("{:.1f}%", frac * 100), {rc.x + cell / 2, rc.y + cell / 2 + 20}, 0.4, ink, 1, true);
    }
    text(img, classes[static_cast<size_t>(r)], {left - 8, top + r * cell + cell / 2 + 5}, 0.45, kInk, 1, false, true);
  }
  for (int c = 0; c < k; ++c) text(img, classes[static_cast<size_t>(c)], {left + c * cell + cell / 2, top - 8}, 0.42, kInk, 1, true);
  text(img, "true", {left - 8, top - 8}, 0.45, kInk, 1, false, true);
  return img;
}

cv::Mat draw_montage(const std::vector<cv::Mat>& images, const std::vector<std::string>& captions, int cell,
                     int columns) {
  const int n = static_cast<int>(images.size());
  const int cols = std::max(1, std::min(columns, n)), rows = std::max(1, (n + cols - 1) / cols);
  const int caption_h = 34;
  cv::Mat img(rows * (cell + caption_h), cols * cell, CV_8UC3, kWhite);
  for (int i = 0; i < n; ++i) {
    const cv::Rect slot((i % cols) * cell, (i / cols) * (cell + caption_h), cell, cell);
    cv::Mat thumb;
    cv::resize(images[static_cast<size_t>(i)], thumb, slot.size(), 0, 0, cv::INTER_AREA);
    thumb.copyTo(img(slot));
    const std::string& cap = i < static_cast<int>(captions.size()) ? captions[static_cast<size_t>(i)] : std::string();
    // Two lines of at most ~26 characters.
    const size_t cut = cap.size() > 26 ? cap.rfind(' ', 26) : std::string::npos;
    text(img, cap.substr(0, cut), {slot.x + 3, slot.y + cell + 14}, 0.36);
    if (cut != std::string::npos) text(img, cap.substr(cut + 1, 26), {slot.x + 3, slot.y + cell + 29}, 0.36);
  }
  return img;
}

}  // namespace maskwatch
