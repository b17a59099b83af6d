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
  cv::Rect2f box;  // frame pixels, in the annotators' convention (BoxCorrection)
  float score = 0;
  // Right eye, left eye, nose tip, right and left mouth corner (frame pixels); zeros from Haar.
  std::array<cv::Point2f, 5> landmarks{};
  // The box as the detector gave it (frame pixels): the classifier's crop is cut around it, as
  // its training crops were (the correction moves boxes towards the labels, not the crops).
  cv::Rect2f crop_box;
};

// A per-coordinate linear map from the detector's box to the annotators' convention, fitted on
// the even-numbered scenes of scenes-dev by `eval --scenes --fit-boxes`. With L = log2(box
// width in the detector's input pixels / 32) (the face size the network saw), the centre moves
// by (dx, dy) x the box size and the sides scale by (exp(lw), exp(lh)), each term a + b x L:
// the labelled boxes are tighter than YuNet's for large faces, looser for small ones.
struct BoxCorrection {
  float dx[2] = {0, 0}, dy[2] = {0, 0}, lw[2] = {0, 0}, lh[2] = {0, 0};
  // `input_scale`: detector input pixels per frame pixel.
  cv::Rect2f apply(const cv::Rect2f& box, double input_scale) const;
  // The detector's box that `apply` maps to `corrected` (a few fixed-point steps; the map is
  // close to the identity): used to turn labelled boxes into the detector's convention.
  cv::Rect2f unapply(const cv::Rect2f& corrected, double input_scale) const;
  bool identity() const;
  // "dx0 dx1 dy0 dy1 lw0 lw1 lh0 lh1", as written into a fine-tuned model's ONNX metadata.
  std::string to_text() const;
  static std::optional<BoxCorrection> from_text(const std::string& text);
};

// The ONNX metadata keys under which `train-faces` records the correction its model's boxes
// need, and the exponent that puts its scores on the product's scale (score^e; see
// train/face_tuner.h).
inline constexpr const char* kBoxCorrectionMetadataKey = "maskwatch.box_correction";
inline constexpr const char* kScoreExponentMetadataKey = "maskwatch.score_exponent";

// A face model's score exponent from its ONNX metadata (1 when it has none).
float score_exponent_of(const std::vector<uint8_t>& onnx_bytes);

// The correction a face model's boxes need: by the file's sha256 for the published models,
// else from its ONNX metadata (a model fine-tuned by `train-faces`); identity otherwise.
BoxCorrection box_correction_of(const std::vector<uint8_t>& onnx_bytes);

struct FaceDetectorOptions {
  // YuNet .onnx, or a model name (face_model_names()); empty = the default model.
  std::filesystem::path model;
  float score_threshold = 0.6f;
  float nms_threshold = 0.3f;
  // 640x480 -> 384x288: a multiple of 32 both ways, no padding (README "Face stage").
  int detect_width = 384;
  int top_k = 100;
  // Empty: the model's own (fitted per model; identity for files we do not know).
  std::optional<BoxCorrection> box_correction;
  // 2023 models: XNNPACK runs them (false: OpenCV DNN). The 2022 model always runs on OpenCV
  // (cv::FaceDetectorYN).
  bool xnnpack = true;
  // XNNPACK's threads for the 2023 models; 0 = as many as OpenCV is set to.
  int threads = 0;
  // When a frame holds no face, look again with the frame in the middle of a grey canvas three
  // times its size: finds faces in small close-ups and tight face crops. Costs a second
  // detection on every frame without a face (`detect` and `eval --scenes` only).
  bool close_up_retry = false;
  // Still images: look four times, at detect_width and at 1.25 times it (rounded to 32 px),
  // each also mirrored, and fuse the faces found (vision/face_fusion.h): higher face AP and
  // precision than one look at about the same recall (README "Four looks at a still"), at
  // about five times the detection cost of a 640x480 photo (`detect` and `eval --scenes` only). A look that would see the same pixels as
  // another (a small image is never scaled up) is not repeated. The Haar fallback looks once.
  bool multi_look = false;
};

enum class FaceModelKind { Yunet2023, Yunet2022, Haar };

// Names accepted by --face-model / detector.face_model besides a path, and the asset files
// they stand for.
struct FaceModelName {
  const char* name;
  const char* file;
  const char* what;
  bool shipped = false;  // trained by this project, in shipped_models_dir() (else an input asset)
};
const std::vector<FaceModelName>& face_model_names();
// "yunet-2022, yunet-n, ...": the names, for an error that says which there are.
std::string face_model_name_list();
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
  // The same, keeping faces down to `threshold` instead of the options' score_threshold (the
  // video pipeline: a face it already follows stays down to TrackerOptions::keep_score).
  std::vector<Face> detect(const cv::Mat& bgr_frame, float threshold);
  // Detector input pixels per frame pixel for a frame of this size (with multi_look: the first
  // look's).
  double input_scale(cv::Size frame) const;
  std::string description() const;
  // Whether XNNPACK runs the network (a 2023 model without --engine opencv).
  bool on_xnnpack() const;
  FaceModelKind kind() const { return kind_; }
  const FaceDetectorOptions& options() const { return opts_; }
  const BoxCorrection& box_correction() const { return correction_; }

 private:
  // Detection on `image` scaled to about `width` px wide, faces scoring >= `threshold`: the
  // frame itself, or a canvas holding it scaled by `shrink` (x, y) at `offset`; boxes in the
  // coordinates of the frame of `frame_size`.
  // `mirrored`: the image is the frame mirrored; boxes and landmarks come back on the frame's
  // own side.
  std::vector<Face> detect_in(const cv::Mat& image, cv::Point2f offset, cv::Point2d shrink, cv::Size frame_size,
                              int width, float threshold, bool mirrored = false);
  std::vector<Face> detect_looks(const cv::Mat& frame, float threshold);  // the four looks, fused
  // The second size of multi_look: 1.25 x detect_width rounded to a multiple of 32 (an image
  // narrower than it is looked at its own size).
  int wider_width() const;
  double input_scale(cv::Size frame, int width) const;
  std::vector<Face> detect_2022(const cv::Mat& small, float threshold);
  std::vector<Face> detect_2023(const cv::Mat& small, float threshold);
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
