// Finds faces with OpenCV's YuNet (cv::FaceDetectorYN) on a copy of the frame scaled to
// about `detect_width` pixels wide; boxes come back in full-frame coordinates. When the YuNet
// file is missing it falls back to the Haar cascade from Debian's opencv-data, with a warning:
// Haar misses many masked faces.
#pragma once
#include <filesystem>
#include <opencv2/core.hpp>
#include <opencv2/objdetect.hpp>
#include <string>
#include <vector>

namespace maskwatch {

struct Face {
  cv::Rect2f box;  // frame pixels
  float score = 0;
};

struct FaceDetectorOptions {
  std::filesystem::path model;  // YuNet .onnx; empty = the asset directory's
  // 0.6: on the sample webcam clip YuNet finds the face in all 78 frames (0.9 finds 33).
  float score_threshold = 0.6f;
  float nms_threshold = 0.3f;
  int detect_width = 320;
  int top_k = 100;
};

class FaceDetector {
 public:
  explicit FaceDetector(const FaceDetectorOptions& options = {});
  std::vector<Face> detect(const cv::Mat& bgr_frame);
  std::string description() const;

 private:
  FaceDetectorOptions opts_;
  cv::Ptr<cv::FaceDetectorYN> yunet_;
  cv::CascadeClassifier haar_;
  cv::Size input_size_;
  cv::Mat small_;  // reused buffer
};

std::filesystem::path default_haar_cascade();

}  // namespace maskwatch
