// "Can this face be judged from this frame?" A dark, noisy, blurred or tiny face gives the
// classifier too little to go on, and its probabilities alone do not say so: a model that
// has never seen a face this dim may still answer at 99 %. The quality gate turns what the
// crop looks like (light, contrast, sharpness, noise, clipping) and how sure the classifier
// is (the margin between its two best classes) into the probability that the answer is
// right, P(right) = sigmoid(w . standardised inputs + b), fitted on validation crops rendered
// under camera conditions (eval/gate_fit.h). A face whose P(right) is under the gate's
// threshold is not judged: `detect` shows it as uncertain, the tracker counts the frame as
// no evidence (vision/tracker.h), and only answered faces count towards accuracy.
//
// Everything is measured on the classifier's own input (the crop resized to the model's
// input size), on the centre two thirds of it: with the crop margin of 0.5 that is the face.
#pragma once
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

namespace maskwatch {

struct FaceQuality {
  double luma = 0;      // mean luma of the face, 0-1 (sRGB values, not linear light)
  double contrast = 0;  // log10 of the luma's standard deviation
  double sharpness = 0; // log10 of the variance of its Laplacian (per 0-1 luma)
  double noise = 0;     // log10 of the robust spread of (luma - its 3x3 median)
  double clipped = 0;   // share of face pixels under 2 % or over 98 % luma
};

// `bgr` is the classifier's input crop (8-bit BGR, any size; measured as it is).
FaceQuality measure_face_quality(const cv::Mat& bgr);

// A noisy face (noise >= kNoisyFace: a robust sigma of 1.6 % of full scale, about 4 grey
// levels; clean photos stay under it 99 times in 100, a -2 EV webcam frame is over it 99
// times in 100) is smoothed before the classifier sees it: a Gaussian of sigma 1 px at 160
// px. The classifier copes with soft faces far better than with grainy ones (on validation
// crops under `dim webcam` 92.3 % balanced with the smoothing, 88.7 % without; `blur 1`
// alone 97.8 %, as clean). Returns `sized` itself when it is not noisy, else a smoothed copy.
inline constexpr double kNoisyFace = -1.8;
cv::Mat smoothed_if_noisy(const cv::Mat& sized, const FaceQuality& q);

// Margin between the two most probable classes, |ln(p1 / p2)|, clamped to [0, 12].
double class_margin(const std::vector<float>& probs);

// The gate's inputs, in the order of gate_input_names().
std::vector<double> gate_inputs(const FaceQuality& q, const std::vector<float>& probs);
const std::vector<std::string>& gate_input_names();

struct QualityGate {
  // Per input (gate_input_names order): mean and scale for standardising, and weight.
  std::vector<double> mean, scale, weights;
  double bias = 0;
  double threshold = 0;  // answer when P(right) >= threshold; 0 = always answer
  nlohmann::json fit = nlohmann::json::object();  // how it was fitted (for the model card)
  // The classes whose answer the gate judges, when they are not the model's own: model class i
  // counts as judged class judged_of_model[i], its probability summed in. A three-class model's
  // gate judges what the consumers count, a mask worn or not (a chin mask told from a bare face
  // is not what it vouches for). Empty: the model's own classes.
  std::vector<int> judged_of_model;
  std::vector<std::string> judged_classes;

  bool enabled() const { return !weights.empty(); }
  double p_right(const std::vector<double>& inputs) const;
  // From a crop's measurements and the model's probabilities (summed into the judged classes first).
  double p_right(const FaceQuality& q, const std::vector<float>& probs) const;
  bool answers(double p) const { return !enabled() || p >= threshold; }

  nlohmann::json to_json() const;
  // Throws Error naming `origin` on a malformed gate (wrong input names or sizes, NaN, judged
  // classes that do not cover `model_classes` classes one to one).
  static QualityGate from_json(const nlohmann::json& j, const std::string& origin, size_t model_classes);
};

}  // namespace maskwatch
