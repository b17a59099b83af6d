// Fast inference of an exported mask model: model.onnx + model.json, run by XNNPACK
// (1.73-2.86x faster than OpenCV DNN per face here, probabilities within 1e-4 of LibTorch as
// OpenCV's are; see README "Classifier latency per face"), or by OpenCV DNN when asked or
// when XNNPACK cannot build the graph (a warning says so).
//
// Loading checks, in order, so a bad file gives a one-line error instead of a crash or a
// silently wrong answer: the sidecar parses and is complete; model.onnx's sha256 equals the
// sidecar's; the protobuf parses and passes onnx::checker; XNNPACK (or OpenCV) builds the
// net; a probe forward gives [1, classes] probabilities.
//
// An ensemble's file (model/model_meta.h: a model.json with "members") loads every member as a
// classifier of its own (each checked as above, and against the sha256 the ensemble names; with
// MemberLoading::WhenNeeded the members after the first are built on the first face that needs them) and
// averages their probabilities (under a cascade only where the first member is unsure); the
// ensemble's own quality gate judges the result.
//
// Not thread-safe: one classifier per thread that classifies.
#pragma once
#include <filesystem>
#include <memory>
#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>
#include <string>
#include <vector>

#include "model/model_meta.h"
#include "vision/xnnpack_net.h"

namespace maskwatch {

struct Prediction {
  int label = -1;            // index into classes()
  float score = 0;           // probability of `label`
  std::vector<float> probs;  // per class, model order
  // The quality gate's verdict (model/face_quality.h): the probability that `label` is right
  // and whether it is high enough to answer. Without a gate in model.json: 1 and true.
  double p_right = 1;
  bool answered = true;
  FaceQuality quality;  // of the crop at the model's input size, before any smoothing
};

// Parses serialized ONNX bytes and runs onnx::checker; throws Error naming `origin`.
// Returns the first input's shape (-1 for a dynamic dimension such as the batch).
std::vector<int64_t> check_onnx_bytes(const std::string& bytes, const std::string& origin);

// An OpenCV DNN net from ONNX bytes (checked first), CPU backend.
cv::dnn::Net load_onnx_net(const std::string& bytes, const std::string& origin);

enum class InferenceEngine { Xnnpack, OpenCvDnn };
std::string inference_engine_name(InferenceEngine e);

// When an ensemble with a cascade builds the members after its first. Every member's files are
// checked on load either way (found, sidecar, the file's sha256 against it, the ensemble's record:
// the same errors); WhenNeeded parses and builds the others on the first face the first member
// is unsure of (a graph that fails then is an error there).
// For one-shot commands (`detect`): a photo whose faces the first member is sure of costs about
// one model's start-up and memory (README: 0.42-0.51 against 0.66-0.77 s, 83 against 124 MiB).
// A stream wants Now: its first unsure face would wait for three models to be built.
enum class MemberLoading { Now, WhenNeeded };

class MaskClassifier {
 public:
  // `sidecar` defaults to model.json beside the ONNX file. XNNPACK uses `threads` threads, 0 =
  // as many as OpenCV is set to (set_compute_threads) when the classifier is built.
  // `onnx_path` may also be an ensemble's .json (then `sidecar` must be empty).
  explicit MaskClassifier(const std::filesystem::path& onnx_path, std::filesystem::path sidecar = {},
                          InferenceEngine engine = InferenceEngine::Xnnpack, int threads = 0,
                          MemberLoading members = MemberLoading::Now);

  // BGR crops of any size; one forward for all of them.
  std::vector<Prediction> classify(const std::vector<cv::Mat>& bgr_crops);
  // Any number of crops, `batch` per forward (bounded memory).
  std::vector<Prediction> classify_batched(const std::vector<cv::Mat>& bgr_crops, int batch = 16);
  // Raw probabilities [N, classes] for an already preprocessed blob (see make_blob).
  cv::Mat forward_blob(const cv::Mat& blob);

  const std::vector<std::string>& classes() const { return meta_.classes; }
  const QualityGate& quality_gate() const { return meta_.quality_gate; }
  // Replaces the gate (for fitting and for tests; the model file is not changed).
  void set_quality_gate(const QualityGate& gate) { meta_.quality_gate = gate; }

  int input_size() const { return meta_.input_size; }
  InferenceEngine engine() const;
  // 1 for a model, the number of members for an ensemble (each face costs up to that many forwards).
  size_t model_count() const { return meta_.is_ensemble() ? meta_.members.size() : 1; }
  // The models built so far (less than model_count() while MemberLoading::WhenNeeded waits).
  size_t models_built() const { return meta_.is_ensemble() ? members_.size() : 1; }
  // An ensemble's faces so far, and how many of them ran every member (the rest: the first
  // member alone, under a cascade). Zero for a model.
  struct CascadeStats {
    size_t faces = 0, all_members = 0;
  };
  const CascadeStats& cascade_stats() const { return cascade_stats_; }
  double cascade_threshold() const { return meta_.cascade_threshold; }
  // False for a model trained on whole images (`train --no-face-crops`: model.json's crop says
  // "face_detector": "none"). run, detect, serve and eval --scenes give it face crops.
  bool trained_on_face_crops() const;
  // One warning line when this model is given crops of another kind than it learnt from
  // (its answers on them were never measured); `model` names it in the line.
  void warn_if_crops_differ(bool given_face_crops, const std::string& model) const;

 private:
  void load_members(const std::filesystem::path& ensemble_path, InferenceEngine engine, int threads,
                    MemberLoading loading);
  // Builds the members MemberLoading::WhenNeeded left checked but not built.
  void build_deferred_members();
  // A member's file (refused when missing), the member built and checked, and the check that a
  // member's sidecar is the model the ensemble was made with (sha256, classes, input size).
  std::filesystem::path existing_member(const EnsembleMember& m) const;
  MaskClassifier build_member(const EnsembleMember& m) const;
  void check_member(const std::filesystem::path& path, const EnsembleMember& m, const ModelMeta& meta) const;
  // The ensemble's probabilities: the mean of the members', or under a cascade the first
  // member's where it is sure enough.
  cv::Mat forward_members(const cv::Mat& blob);

  ModelMeta meta_;
  std::vector<MaskClassifier> members_;  // an ensemble's models (then xnn_ and net_ are unused)
  std::filesystem::path ensemble_path_;
  std::vector<EnsembleMember> deferred_;  // members checked, to be built when needed
  InferenceEngine member_engine_ = InferenceEngine::Xnnpack;
  int member_threads_ = 0;
  CascadeStats cascade_stats_;
  std::unique_ptr<XnnpackNet> xnn_;  // set: XNNPACK runs the model; else net_
  cv::dnn::Net net_;
};

}  // namespace maskwatch
