#include "vision/face_detector.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <opencv2/imgproc.hpp>

#include "util/error.h"
#include "util/files.h"
#include "util/paths.h"

namespace maskwatch {
namespace {
constexpr int kMinDetectSide = 64;
}  // namespace

std::filesystem::path default_haar_cascade() {
  for (const char* p : {"/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml",
                        "/usr/share/opencv/haarcascades/haarcascade_frontalface_default.xml"})
    if (std::filesystem::exists(p)) return p;
  return {};
}

FaceDetector::FaceDetector(const FaceDetectorOptions& o) : opts_(o) {
  if (opts_.detect_width < 64) throw Error("face detection width must be at least 64 pixels");
  const auto model = opts_.model.empty() ? asset_path(kYunetModel) : opts_.model;
  if (std::filesystem::exists(model)) {
    // Read it ourselves first so an empty or unreadable file gives our error, not OpenCV's.
    read_file_bytes(model, "face model");
    try {
      yunet_ = cv::FaceDetectorYN::create(model.string(), "", cv::Size(opts_.detect_width, opts_.detect_width),
                                          opts_.score_threshold, opts_.nms_threshold, opts_.top_k);
    } catch (const cv::Exception& e) {
      throw Error(fmt::format("cannot load face model {}: {}", model.string(), e.err));
    }
    if (!yunet_) throw Error("cannot load face model " + model.string());
    // Any ONNX loads; only a forward shows whether it has YuNet's outputs (the mask model
    // fails with "Layer with requested id=-1 not found"). One probe at start-up.
    try {
      cv::Mat probe(kMinDetectSide, kMinDetectSide, CV_8UC3, cv::Scalar::all(128)), found;
      yunet_->setInputSize(probe.size());
      yunet_->detect(probe, found);
    } catch (const cv::Exception&) {
      throw Error(fmt::format("face model {} is not a YuNet face detector (its outputs do not match)", model.string()));
    }
    return;
  }
  if (!opts_.model.empty()) throw Error("face model not found: " + opts_.model.string());
  const auto cascade = default_haar_cascade();  // opencv-data's frontal face cascade
  if (cascade.empty() || !haar_.load(cascade.string()))
    throw Error(
        fmt::format("no face detector: YuNet model {} is missing and no Haar cascade was found "
                    "(install opencv-data, or pass --face-model)",
                    model.string()));
  spdlog::warn("YuNet model {} not found: falling back to the Haar cascade, which often misses masked faces",
               model.string());
}

std::string FaceDetector::description() const {
  return yunet_ ? fmt::format("YuNet at {} px wide, score >= {}", opts_.detect_width, opts_.score_threshold)
                : "Haar cascade (fallback)";
}

std::vector<Face> FaceDetector::detect(const cv::Mat& frame) {
  std::vector<Face> faces;
  if (frame.empty()) return faces;
  const double scale = std::min(1.0, static_cast<double>(opts_.detect_width) / frame.cols);
  const cv::Size size(std::max(1, static_cast<int>(std::lround(frame.cols * scale))),
                      std::max(1, static_cast<int>(std::lround(frame.rows * scale))));
  if (scale < 1.0)
    cv::resize(frame, small_, size, 0, 0, cv::INTER_AREA);
  else
    small_ = frame;
  // YuNet's forward throws on inputs under about 60 px a side (its coarsest feature map
  // becomes empty). Pad small images on the right/bottom: boxes keep their coordinates.
  if (small_.cols < kMinDetectSide || small_.rows < kMinDetectSide) {
    cv::Mat padded;
    cv::copyMakeBorder(small_, padded, 0, std::max(0, kMinDetectSide - small_.rows), 0,
                       std::max(0, kMinDetectSide - small_.cols), cv::BORDER_CONSTANT, cv::Scalar::all(0));
    small_ = padded;
  }
  const cv::Size detect_size = small_.size();
  const auto to_frame = [s = static_cast<float>(scale)](float x, float y, float w, float h) {
    return cv::Rect2f(x / s, y / s, w / s, h / s);
  };
  if (yunet_) {
    if (detect_size != input_size_) {
      yunet_->setInputSize(detect_size);
      input_size_ = detect_size;
    }
    cv::Mat out;
    yunet_->detect(small_, out);
    for (int r = 0; r < out.rows; ++r) {
      const float* d = out.ptr<float>(r);  // x, y, w, h, 5 landmarks (10), score
      faces.push_back({to_frame(d[0], d[1], d[2], d[3]), d[14]});
    }
  } else {
    cv::Mat gray;
    cv::cvtColor(small_, gray, cv::COLOR_BGR2GRAY);
    std::vector<cv::Rect> rects;
    haar_.detectMultiScale(gray, rects, 1.1, 4, 0, cv::Size(24, 24));
    for (const auto& r : rects)
      faces.push_back({to_frame(static_cast<float>(r.x), static_cast<float>(r.y), static_cast<float>(r.width),
                                static_cast<float>(r.height)),
                       1.0f});
  }
  // Clip to the frame; drop degenerate boxes.
  const cv::Rect2f bounds(0, 0, static_cast<float>(frame.cols), static_cast<float>(frame.rows));
  std::vector<Face> kept;
  for (auto& f : faces) {
    f.box &= bounds;
    if (f.box.width >= 4 && f.box.height >= 4) kept.push_back(f);
  }
  return kept;
}

}  // namespace maskwatch
