// PNG plots drawn with OpenCV: learning curves and confusion matrices.
#pragma once
#include <filesystem>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "util/png.h"

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

// Counts with row-normalised colour; rows = true class, cols = predicted.
cv::Mat draw_confusion(const std::vector<std::vector<int>>& confusion, const std::vector<std::string>& classes,
                       const std::string& title);

// A grid of thumbnails with a caption under each (e.g. misclassified images).
cv::Mat draw_montage(const std::vector<cv::Mat>& images, const std::vector<std::string>& captions, int cell = 160,
                     int columns = 6);

}  // namespace maskwatch
