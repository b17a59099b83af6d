// End-to-end evaluation on annotated scenes (Pascal VOC): faces are found and classified as
// `detect` does, then matched to the labelled boxes (IoU >= 0.5, VOC rules) to give average
// precision per class (all-point interpolation), their mean (mAP), class-agnostic face AP,
// and precision / recall at the operating point (each face labelled with its top class).
//
// "Difficult" boxes count as neither true nor false positives: those marked difficult,
// faces under `min_face` px (shorter side), and boxes of classes that are not evaluated
// (masks worn incorrectly, unless --classes includes that class). A detection whose best
// match is such a box, or that matches nothing and is itself under `min_face` px, is ignored.
#pragma once
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

namespace maskwatch {

class Pipeline;

struct GroundTruthBox {
  int image = 0;
  cv::Rect2f box;
  int cls = 0;  // evaluated class index, or -1: a region to ignore for every class
  bool difficult = false;
};

struct ScoredBox {
  int image = 0;
  cv::Rect2f box;
  double score = 0;
  int cls = 0;  // evaluated class index (-1 for class-agnostic face AP)
};

struct ApResult {
  double ap = 0;
  int positives = 0, tp = 0, fp = 0, ignored = 0;  // over all detections of the class
  std::vector<double> recall, precision;           // the curve, one point per counted detection
};

// AP of detections of class `cls` against the boxes (cls = -1: class-agnostic, every
// non-ignored box is a positive).
ApResult average_precision(const std::vector<GroundTruthBox>& truth, const std::vector<ScoredBox>& detections, int cls,
                           double iou_threshold = 0.5, float min_face = 32);

// All-point interpolated AP of a precision-recall curve (VOC 2010+).
double all_point_ap(const std::vector<double>& recall, const std::vector<double>& precision);

struct SceneEvalOptions {
  std::vector<std::string> classes;  // evaluated classes; empty = with_mask and without_mask
  float min_face = 32;
  double iou = 0.5;
};

// Reads DIR/annotations/*.xml (images in DIR/images), runs the pipeline on every image and
// returns the report as JSON; writes pr_curves.png to `plot_dir` when it is not empty.
nlohmann::json evaluate_scenes(const std::filesystem::path& dir, Pipeline& pipeline,
                               const std::vector<std::string>& model_classes, const SceneEvalOptions& options,
                               const std::filesystem::path& plot_dir);

// VOC class name -> this project's name ("mask_weared_incorrect" -> "mask_worn_incorrectly").
std::string canonical_class_name(const std::string& voc_name);

}  // namespace maskwatch
