#include "eval/plots.h"

#include <fmt/format.h>

#include <algorithm>
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

// A plot area with round-number axes: maps data to pixels and draws grid, ticks and labels.
struct Axes {
  cv::Rect plot;
  double x0, x1, y0, y1;
  int px(double x) const { return plot.x + static_cast<int>(std::lround((x - x0) / (x1 - x0) * plot.width)); }
  int py(double y) const {
    return plot.y + plot.height - static_cast<int>(std::lround((y - y0) / (y1 - y0) * plot.height));
  }
  cv::Point at(double x, double y) const { return {px(x), py(y)}; }
};

std::string tick_label(double v, double step, bool percent) {
  if (percent) v *= 100, step *= 100;
  const int decimals = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
  return fmt::format("{:.{}f}{}", v, std::max(0, decimals), percent ? "%" : "");
}

// Grid and tick labels on both axes; the y range should already be widened to its ticks.
void draw_axes(cv::Mat& img, const Axes& a, const std::vector<double>& xt, const std::vector<double>& yt,
               bool x_percent, bool y_percent, const std::string& x_label, const std::string& y_label) {
  const double ys = yt.size() > 1 ? yt[1] - yt[0] : 1, xs = xt.size() > 1 ? xt[1] - xt[0] : 1;
  for (double v : yt) {
    cv::line(img, {a.plot.x, a.py(v)}, {a.plot.x + a.plot.width, a.py(v)}, kGrid, 1);
    text(img, tick_label(v, ys, y_percent), {a.plot.x - 6, a.py(v) + 4}, 0.38, kInk, 1, false, true);
  }
  for (double v : xt) {
    cv::line(img, {a.px(v), a.plot.y + a.plot.height}, {a.px(v), a.plot.y + a.plot.height + 4}, kInk, 1);
    text(img, tick_label(v, xs, x_percent), {a.px(v), a.plot.y + a.plot.height + 17}, 0.38, kInk, 1, true);
  }
  text(img, x_label, {a.plot.x + a.plot.width / 2, a.plot.y + a.plot.height + 36}, 0.45, kInk, 1, true);
  if (!y_label.empty()) {
    cv::Mat label(18, a.plot.height, CV_8UC3, kWhite);
    text(label, y_label, {label.cols / 2, 13}, 0.42, kInk, 1, true);
    cv::rotate(label, label, cv::ROTATE_90_COUNTERCLOCKWISE);
    const int x = std::max(0, a.plot.x - 58);
    label.copyTo(img(cv::Rect(x, a.plot.y, label.cols, label.rows)));
  }
  cv::rectangle(img, a.plot, kInk, 1);
}

void draw_legend(cv::Mat& img, const Axes& a, const std::vector<std::pair<std::string, cv::Scalar>>& entries,
                 bool bottom_right = true) {
  const int rows = static_cast<int>(entries.size());
  int width = 40;
  for (const auto& e : entries) width = std::max(width, 44 + cv::getTextSize(e.first, kFont, 0.4, 1, nullptr).width);
  const int y = bottom_right ? a.plot.y + a.plot.height - 10 - 16 * rows : a.plot.y + 8;
  const cv::Rect legend(a.plot.x + a.plot.width - width - 8, y, width, 16 * rows + 4);
  cv::rectangle(img, legend, kWhite, cv::FILLED);
  cv::rectangle(img, legend, kGrid, 1);
  int legend_y = legend.y + 14;
  for (const auto& [name, color] : entries) {
    cv::line(img, {legend.x + 6, legend_y - 4}, {legend.x + 30, legend_y - 4}, color, 2);
    text(img, name, {legend.x + 36, legend_y}, 0.4);
    legend_y += 16;
  }
}

void draw_panel(cv::Mat& img, cv::Rect area, const CurvePanel& p, int marker_epoch, const std::string& marker_label) {
  const int left = 70, right = 15, top = 45, bottom = 45;
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
  if (!p.percent) lo = std::max(0.0, lo);
  const auto yt = nice_ticks(lo, hi, 5);
  const int n = static_cast<int>(std::max<size_t>(epochs, 2));
  const Axes a{plot, 1, static_cast<double>(n), yt.front(), yt.back()};
  std::vector<double> xt;
  for (double e : nice_ticks(1, n, 8))
    if (e >= 1 && e <= n && e == std::floor(e)) xt.push_back(e);
  text(img, p.title, {area.x + area.width / 2, area.y + 20}, 0.6, kInk, 1, true);
  draw_axes(img, a, xt, yt, false, p.percent, "epoch", "");
  int marker_x = -1;
  if (marker_epoch > 1 && marker_epoch <= n) {
    marker_x = (a.px(marker_epoch - 1) + a.px(marker_epoch)) / 2;
    dashed_vline(img, marker_x, plot.y, plot.y + plot.height, cv::Scalar(0, 0, 200));
  }
  for (const auto& s : p.series) {
    std::vector<cv::Point> pts;
    for (size_t i = 0; i < s.values.size(); ++i)
      if (std::isfinite(s.values[i])) pts.push_back(a.at(static_cast<double>(i + 1), s.values[i]));
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
  std::vector<std::pair<std::string, cv::Scalar>> entries;
  for (const auto& series : p.series) entries.emplace_back(series.name, series.color);
  draw_legend(img, a, entries);
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!(hi > lo)) hi = lo + 1;
  const double raw = (hi - lo) / std::max(1, target);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw * 0.999) {
      step = m * mag;
      break;
    }
  const double first = std::floor(lo / step + 1e-9) * step, last = std::ceil(hi / step - 1e-9) * step;
  std::vector<double> ticks;
  for (int i = 0; first + i * step <= last + step * 1e-6; ++i) {
    double v = first + i * step;
    if (std::abs(v) < step * 1e-9) v = 0;  // no "-0"
    ticks.push_back(v);
  }
  if (ticks.size() < 2) ticks.push_back(ticks.back() + step);
  return ticks;
}

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
  for (int c = 0; c < k; ++c)
    text(img, classes[static_cast<size_t>(c)], {left + c * cell + cell / 2, top - 8}, 0.42, kInk, 1, true);
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
    // Two lines: split at '\n' when given, else at a space near the middle; each line is cut
    // to the cell's width so a caption never runs into its neighbour's.
    std::vector<std::string> lines;
    if (const auto nl = cap.find('\n'); nl != std::string::npos) {
      lines = {cap.substr(0, nl), cap.substr(nl + 1)};
    } else {
      const size_t cut = cap.size() > 26 ? cap.rfind(' ', 26) : std::string::npos;
      lines = {cap.substr(0, cut)};
      if (cut != std::string::npos) lines.push_back(cap.substr(cut + 1));
    }
    for (size_t l = 0; l < lines.size() && l < 2; ++l) {
      std::string line = lines[l];
      while (!line.empty() && cv::getTextSize(line, kFont, 0.36, 1, nullptr).width > cell - 4) line.pop_back();
      text(img, line, {slot.x + 3, slot.y + cell + 14 + 15 * static_cast<int>(l)}, 0.36);
    }
  }
  return img;
}

cv::Mat draw_xy_chart(const std::string& title, const std::string& x_label, const std::string& y_label,
                      const std::vector<XySeries>& series, bool diagonal, bool percent_axes, double y_lo,
                      double y_hi) {
  cv::Mat img(460, 520, CV_8UC3, kWhite);
  const Axes a{cv::Rect(75, 45, 420, 350), 0, 1, y_lo, y_hi};
  text(img, title, {img.cols / 2, 24}, 0.55, kInk, 1, true);
  draw_axes(img, a, nice_ticks(0, 1, 5), nice_ticks(y_lo, y_hi, 5), percent_axes, percent_axes, x_label, y_label);
  if (diagonal) cv::line(img, a.at(0, 0), a.at(1, 1), kGrid * 0.8, 1, cv::LINE_AA);
  std::vector<std::pair<std::string, cv::Scalar>> entries;
  for (const auto& s : series) {
    std::vector<cv::Point> pts;
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i)
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i]))
        pts.push_back(a.at(std::clamp(s.x[i], 0.0, 1.0), std::clamp(s.y[i], y_lo, y_hi)));
    if (s.step && pts.size() > 1) {
      std::vector<cv::Point> stairs;
      for (size_t i = 0; i < pts.size(); ++i) {
        if (i) stairs.emplace_back(pts[i].x, pts[i - 1].y);
        stairs.push_back(pts[i]);
      }
      pts = stairs;
    }
    if (pts.size() > 1) cv::polylines(img, pts, false, s.color, 2, cv::LINE_AA);
    if (s.markers)
      for (const auto& pt : pts) cv::circle(img, pt, 4, s.color, cv::FILLED, cv::LINE_AA);
    entries.emplace_back(s.name, s.color);
  }
  draw_legend(img, a, entries, !diagonal);
  return img;
}

cv::Mat hconcat_images(const std::vector<cv::Mat>& images) {
  int h = 0;
  for (const auto& m : images) h = std::max(h, m.rows);
  std::vector<cv::Mat> padded;
  for (const auto& m : images) {
    cv::Mat p(h, m.cols, CV_8UC3, kWhite);
    m.copyTo(p(cv::Rect(0, 0, m.cols, m.rows)));
    padded.push_back(p);
  }
  cv::Mat out;
  cv::hconcat(padded, out);
  return out;
}

}  // namespace maskwatch
