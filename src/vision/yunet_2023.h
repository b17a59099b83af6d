// The 2023 YuNet face detectors (libfacedetection.train: yunet_n / yunet_s), run by XNNPACK
// (vision/xnnpack_graph.h; 2.x faster than OpenCV DNN, `bench`) or as a plain cv::dnn::Net
// (`--engine opencv`): OpenCV 4.6's cv::FaceDetectorYN only decodes the 2022 outputs. The network is
// fully convolutional: any input whose sides are multiples of 32 works, so a 640x480 frame
// scaled to 320x240 is padded to 320x256, not to the 320x320 square the file was exported at.
//
// Outputs, per stride s in 8/16/32 and anchor cell (row r, col c), cells row-major:
//   cls_s, obj_s [1, cells, 1]  score = sqrt(clamp01(cls) x clamp01(obj))
//   bbox_s       [1, cells, 4]  centre ((c + b0) s, (r + b1) s), size (exp(b2) s, exp(b3) s)
//   kps_s        [1, cells, 10] five landmarks ((c + k2i) s, (r + k2i+1) s)
#pragma once
#include <array>
#include <filesystem>
#include <memory>
#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>
#include <string>
#include <vector>

namespace maskwatch {

struct FaceCandidate {
  cv::Rect2f box;  // input pixels
  float score = 0;
  std::array<cv::Point2f, 5> landmarks{};  // right eye, left eye, nose tip, mouth corners
};

// Output names, in the order decode_yunet_2023 takes them.
const std::vector<std::string>& yunet_2023_output_names();

// Candidates with score >= threshold from the 12 outputs (in yunet_2023_output_names order) of
// an input of `input` size (sides multiples of 32). Throws Error naming what differs when an
// output's shape does not fit that size (`model` names the file in the message). The score is
// sqrt(cls x obj), raised to `score_exponent` (a fine-tuned model's calibration to the product's
// threshold; monotone, so the ranking of faces does not change).
std::vector<FaceCandidate> decode_yunet_2023(const std::vector<cv::Mat>& outputs, cv::Size input, float threshold,
                                             const std::string& model = "model", float score_exponent = 1.0f);

class XnnpackGraph;

class Yunet2023 {
 public:
  // Probes the network (`net`, read from `model` by the face detector, which reads the file once to
  // tell its kind); throws Error naming the file and what differs when it is not
  // a 2023 YuNet (other outputs, or outputs of other shapes). With `onnx_bytes` (the file's
  // bytes) XNNPACK runs it; without, OpenCV DNN.
  Yunet2023(const std::filesystem::path& model, cv::dnn::Net net, const std::vector<uint8_t>* onnx_bytes = nullptr,
            int threads = 0);
  ~Yunet2023();
  // Candidates (before NMS) in `bgr`'s pixels; `bgr` may be any size.
  std::vector<FaceCandidate> detect(const cv::Mat& bgr, float threshold);
  void set_score_exponent(float e) { score_exponent_ = e; }
  // True when the net's outputs are the 2023 ones (cheap: reads the graph only).
  static bool has_2023_outputs(const cv::dnn::Net& net);
  bool on_xnnpack() const { return xnn_ != nullptr; }

 private:
  std::filesystem::path path_;
  cv::dnn::Net net_;
  std::unique_ptr<XnnpackGraph> xnn_;  // set: XNNPACK runs the graph, else net_
  std::vector<std::string> out_names_;
  cv::Mat padded_, blob_;
  std::vector<cv::Mat> outs_;
  float score_exponent_ = 1.0f;
};

}  // namespace maskwatch
