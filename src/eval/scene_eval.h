// End-to-end evaluation on annotated scenes (Pascal VOC): faces are found and classified as
// `detect` does, then matched to the labelled boxes to give average precision (all-point
// interpolation) per class, their mean (mAP), and class-agnostic face AP.
//
// The headline protocol scores what a user sees:
//   - one detection per face, with the label `run`/`detect` show (the argmax of the model's
//     classes, a class that is not evaluated folded into without_mask; uncertain faces keep
//     their argmax), score = face score x that label's probability;
//   - ignore regions: labelled faces under `min_face` px (shorter side), boxes marked
//     difficult, and boxes of classes not evaluated (masks worn incorrectly, unless --classes
//     names that class or --map folds it into one, e.g. mask_worn_incorrectly=without_mask);
//   - each detection, best score first, takes the highest-IoU box that is of its class or an
//     ignore region; IoU >= 0.5 with a box of its class is a true positive (a second detection
//     of that box a false positive), with an ignore region it is ignored, and anything else, a
//     detection of any size, is a false positive (a face given the wrong label included).
// A kinder variant offers every face under every class (score = face score x that class's
// probability), as detection benchmarks usually do; it is reported beside the headline, named
// "per-class-score".
#pragma once
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <set>
#include <string>
#include <vector>

#include "vision/face_detector.h"

namespace maskwatch {

class Pipeline;

struct GroundTruthBox {
  int image = 0;
  cv::Rect2f box;
  int cls = 0;  // evaluated class index, or -1: a region to ignore for every class
  bool difficult = false;
  bool worn_incorrectly = false;  // labelled as a mask under the nose or chin (whatever it is scored as)
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
  std::vector<char> truth_found;                   // per truth box: matched by a true positive
  std::vector<size_t> false_positives;             // indices into the detections given
};

// AP of detections of class `cls` against the boxes under the headline rules (cls = -1:
// class-agnostic, every box that is not an ignore region is a positive).
ApResult average_precision(const std::vector<GroundTruthBox>& truth, const std::vector<ScoredBox>& detections, int cls,
                           double iou_threshold = 0.5, float min_face = 32);

// All-point interpolated AP of a precision-recall curve (VOC 2010+).
double all_point_ap(const std::vector<double>& recall, const std::vector<double>& precision);

// One face as the pipeline saw it, with the evaluated classes' probabilities.
struct SceneFace {
  int image = 0;
  cv::Rect2f box;
  float face_score = 0;
  int label = -1;            // evaluated class of the label the product shows (-1: none)
  float label_prob = 0;      // the model's probability of that label
  std::vector<float> probs;  // per evaluated class
  double input_scale = 1;    // detector input pixels per image pixel
};

// Detections for the headline protocol, the per-class-score variant and face AP.
std::vector<ScoredBox> shown_label_detections(const std::vector<SceneFace>& faces);
std::vector<ScoredBox> per_class_score_detections(const std::vector<SceneFace>& faces, int classes);
std::vector<ScoredBox> face_detections(const std::vector<SceneFace>& faces);

struct SceneEvalOptions {
  std::vector<std::string> classes;  // evaluated classes; empty = with_mask and without_mask
  // Labelled class -> evaluated class (after canonical_class_name), e.g. mask_worn_incorrectly ->
  // without_mask: a chin mask must then be shown as "without mask" to count as found.
  std::map<std::string, std::string> class_map;
  float min_face = 32;
  double iou = 0.5;
  // Images (file names in images/) reported again on their own ("subset" in the report).
  std::set<std::string> subset;
  std::string subset_name;
  // Fit a BoxCorrection on the even-numbered images and report it on the odd ones (the
  // pipeline's detector must run without a correction).
  bool fit_boxes = false;
  float fit_min_score = 0.6f;  // faces used for the fit: the product's default operating point
};

// The sheets evaluate_scenes writes (eval refuses outputs that would land on them).
inline constexpr const char* kPrCurvesSheet = "pr_curves.png";
inline constexpr const char* kMissedFacesSheet = "missed_faces.png";
inline constexpr const char* kFalseFacesSheet = "false_faces.png";

// Reads DIR/annotations/*.xml (images in DIR/images), runs the pipeline on every image and
// returns the report as JSON; writes the three sheets above to `plot_dir` when it is not empty.
nlohmann::json evaluate_scenes(const std::filesystem::path& dir, Pipeline& pipeline,
                               const std::vector<std::string>& model_classes, const SceneEvalOptions& options,
                               const std::filesystem::path& plot_dir);

// Least-squares fit of each BoxCorrection term (a + b x L) from the faces with score >=
// `min_score` to the labelled boxes they overlap best (IoU >= 0.3, labelled faces of at least
// `min_face` px); offsets and log ratios clipped to +-1 so that a stray match cannot pull the
// line. Identity when fewer than kMinBoxFitPairs pairs; `pairs`, when given, gets their count.
constexpr int kMinBoxFitPairs = 10;
BoxCorrection fit_box_correction(const std::vector<GroundTruthBox>& truth, const std::vector<SceneFace>& faces,
                                 float min_score, float min_face = 32, int* pairs = nullptr);

// VOC class name -> this project's name ("mask_weared_incorrect" -> "mask_worn_incorrectly").
std::string canonical_class_name(const std::string& voc_name);

}  // namespace maskwatch
