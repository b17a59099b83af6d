// Finds faces on a copy of the frame scaled to about `detect_width` pixels wide; boxes come
// back in full-frame coordinates. Three kinds of detector:
//   - YuNet 2023 (libfacedetection.train yunet_n / yunet_s; vision/yunet_2023.h), decoded here;
//   - YuNet 2022 (OpenCV zoo), through OpenCV's cv::FaceDetectorYN;
//   - the Haar cascade from Debian's opencv-data, only when the default YuNet file is missing
//     (with a warning: Haar misses many masked faces).
// The kind is told from the ONNX file's outputs; a file that is neither YuNet is refused with
// one line that names it and says what differs.
#pragma once
#include <array>
#include <filesystem>
#include <memory>
#include <opencv2/core.hpp>
#include <opencv2/objdetect.hpp>
#include <optional>
#include <string>
#include <vector>

namespace maskwatch {

class Yunet2023;

struct Face {
  cv::Rect2f box;  // frame pixels
  float score = 0;
  // Right eye, left eye, nose tip, right and left mouth corner (frame pixels); zeros from Haar.
  std::array<cv::Point2f, 5> landmarks{};
};

// A per-coordinate linear map from the detector's box to the annotators' convention (fitted
// on half of scenes-dev by `eval --scenes --fit-boxes`): centre moves by (dx, dy) x the box
// size, width and height scale by (sw, sh).
struct BoxCorrection {
  float dx = 0, dy = 0, sw = 1, sh = 1;
  cv::Rect2f apply(const cv::Rect2f& b) const;
  bool identity() const { return dx == 0 && dy == 0 && sw == 1 && sh == 1; }
};

struct FaceDetectorOptions {
  // YuNet .onnx, or a model name (face_model_names()); empty = the default model.
  std::filesystem::path model;
  float score_threshold = 0.6f;
  float nms_threshold = 0.3f;
  int detect_width = 320;
  int top_k = 100;
  // Empty: the model's own (fitted per model; identity for files we do not know).
  std::optional<BoxCorrection> box_correction;
};

enum class FaceModelKind { Yunet2023, Yunet2022, Haar };

// Names accepted by --face-model / detector.face_model besides a path, and the asset files
// they stand for.
struct FaceModelName {
  const char* name;
  const char* file;
  const char* what;
};
const std::vector<FaceModelName>& face_model_names();
// The default face model's name.
const char* default_face_model_name();
// A name -> its asset path; anything else is taken as a path.
std::filesystem::path resolve_face_model(const std::filesystem::path& model_or_name);

class FaceDetector {
 public:
  explicit FaceDetector(const FaceDetectorOptions& options = {});
  ~FaceDetector();
  FaceDetector(FaceDetector&&) noexcept;
  std::vector<Face> detect(const cv::Mat& bgr_frame);
  std::string description() const;
  FaceModelKind kind() const { return kind_; }
  const BoxCorrection& box_correction() const { return correction_; }

 private:
  std::vector<Face> detect_2022(const cv::Mat& small);
  std::vector<Face> detect_2023(const cv::Mat& small);
  FaceDetectorOptions opts_;
  FaceModelKind kind_ = FaceModelKind::Haar;
  std::filesystem::path path_;
  BoxCorrection correction_;
  std::unique_ptr<Yunet2023> yunet_2023_;
  cv::Ptr<cv::FaceDetectorYN> yunet_;
  cv::CascadeClassifier haar_;
  cv::Size input_size_;
  cv::Mat small_;  // reused buffer
};

std::filesystem::path default_haar_cascade();

}  // namespace maskwatch
