// Face crops for the classifier: a square around the face box, enlarged by a margin so the
// crop frames head and shoulders like the training photos, kept inside the frame.
#pragma once
#include <opencv2/core.hpp>

namespace maskwatch {

// Square of side max(w, h) * (1 + margin) centred on the box, shifted to lie inside the
// frame; when the frame is too small for it, the side shrinks to the frame's shorter side.
cv::Rect square_crop(const cv::Rect2f& face, cv::Size frame, double margin);

// The pixels of square_crop (a view, no copy).
cv::Mat crop_face(const cv::Mat& frame, const cv::Rect2f& face, double margin);

}  // namespace maskwatch
