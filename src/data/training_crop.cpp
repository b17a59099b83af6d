#include "data/training_crop.h"

#include "model/preprocess.h"
#include "vision/crop.h"

namespace maskwatch {

const char* crop_kind_name(CropKind k) {
  switch (k) {
    case CropKind::Face: return "face";
    case CropKind::WholeImage: return "whole_image";
    case CropKind::NoFace: return "no_face";
  }
  return "?";
}

TrainingCrop choose_training_crop(const cv::Mat& image, FaceDetector& detector, const TrainingCropOptions& o) {
  TrainingCrop out;
  const int side = std::min(image.cols, image.rows);
  out.rect = cv::Rect((image.cols - side) / 2, (image.rows - side) / 2, side, side);
  const auto faces = detector.detect(image);
  const Face* best = nullptr;
  const auto central = [&](const Face& f) {
    const float cx = f.box.x + f.box.width / 2, cy = f.box.y + f.box.height / 2;
    return cx > image.cols * 0.25f && cx < image.cols * 0.75f && cy > image.rows * 0.25f && cy < image.rows * 0.75f;
  };
  for (bool need_central : {true, false}) {
    for (const auto& f : faces)
      if ((!need_central || central(f)) && (!best || f.box.area() > best->box.area())) best = &f;
    if (best) break;
  }
  if (!best) return out;
  out.rect = square_crop(best->crop_box, image.size(), o.margin);  // as the pipeline crops
  out.face_score = best->score;
  out.kind = out.rect.width < o.whole_image_share * side ? CropKind::Face : CropKind::WholeImage;
  return out;
}

}  // namespace maskwatch
