// The classifier's view of a labelled training image, chosen the way run time chooses it:
// find the face with YuNet and take the square of (1 + margin) x the face box
// (vision/crop.h, the same function `run` uses), kept inside the image. Measured on the data
// (README): real-masks crops are already such squares (1.5x the box is 1.0-1.3x the image),
// so they stay whole; seed-masks photos with more around the face are cropped to it; where
// no face is found the centred square is used and the image is counted.
#pragma once
#include <opencv2/core.hpp>
#include <string>

#include "vision/face_detector.h"

namespace maskwatch {

enum class CropKind {
  Face,        // cropped to the run-time square around the detected face
  WholeImage,  // a face was found and its run-time square covers (almost) the whole image
  NoFace,      // no face found: the centred square
};
const char* crop_kind_name(CropKind k);

struct TrainingCropOptions {
  FaceDetectorOptions detector;
  double margin = 0.5;  // as `run --margin`
  // A crop smaller than this share of the image's shorter side counts as Face (a real crop).
  double whole_image_share = 0.95;
};

struct TrainingCrop {
  cv::Rect rect;
  CropKind kind = CropKind::NoFace;
  float face_score = 0;
};

// Picks the face (the largest one whose centre is in the middle half of the image, else
// the largest) and its run-time crop.
TrainingCrop choose_training_crop(const cv::Mat& image, FaceDetector& detector, const TrainingCropOptions& options);

}  // namespace maskwatch
