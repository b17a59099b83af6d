// PNG plots drawn with OpenCV: learning curves and confusion matrices.
#pragma once
#include <filesystem>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "media/save_png.h"

namespace maskwatch {

struct Series {
  std::string name;
  std::vector<double> values;  // one per epoch; NaN = no value
  cv::Scalar color;
};

struct CurvePanel {
  std::string title, y_label;
  std::vector<Series> series;
  bool percent = false;  // format y ticks as percentages (values in [0, 1])
};

// Panels side by side over epochs 1..N; a dashed vertical line before epoch `marker_epoch`
// (1-based; 0 = none) labelled `marker_label`.
cv::Mat draw_curves(const std::vector<CurvePanel>& panels, int marker_epoch, const std::string& marker_label);

// A square chart over [0, 1] x [y_lo, y_hi] (reliability diagrams, precision-recall and
// risk-coverage curves).
struct XySeries {
  std::string name;
  std::vector<double> x, y;
  cv::Scalar color;
  bool markers = false;  // a dot per point
  bool step = false;     // draw as a staircase (precision-recall envelopes)
};
cv::Mat draw_xy_chart(const std::string& title, const std::string& x_label, const std::string& y_label,
                      const std::vector<XySeries>& series, bool diagonal, bool percent_axes, double y_lo = 0,
                      double y_hi = 1);

// Images side by side (top-aligned, white padding).
cv::Mat hconcat_images(const std::vector<cv::Mat>& images);

// Round tick values (1-2-5 steps) covering [lo, hi], about `target` intervals, as plotting
// libraries choose them: 0, 0.2, 0.4... rather than 0.0547, 0.109...
std::vector<double> nice_ticks(double lo, double hi, int target = 5);

// Counts with row-normalised colour; rows = true class, cols = predicted.
cv::Mat draw_confusion(const std::vector<std::vector<int>>& confusion, const std::vector<std::string>& classes,
                       const std::string& title);

// A grid of thumbnails with a caption under each (e.g. misclassified images).
cv::Mat draw_montage(const std::vector<cv::Mat>& images, const std::vector<std::string>& captions, int cell = 160,
                     int columns = 6);

}  // namespace maskwatch
