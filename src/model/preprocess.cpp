#include "model/preprocess.h"

#include <opencv2/dnn.hpp>
#include <opencv2/imgproc.hpp>

#include "media/area_resize.h"
#include "util/error.h"

namespace maskwatch {

cv::Mat resize_square(const cv::Mat& bgr, int size) {
  if (bgr.cols == size && bgr.rows == size) return bgr;
  const bool shrink = bgr.cols > size || bgr.rows > size;
  cv::Mat out;
  if (shrink)
    shrink_area(bgr, out, cv::Size(size, size));  // INTER_AREA's pixels, in less time (media/area_resize.h)
  else
    cv::resize(bgr, out, cv::Size(size, size), 0, 0, cv::INTER_LINEAR);
  return out;
}

cv::Mat make_blob(const std::vector<cv::Mat>& bgr_images, int size) {
  if (bgr_images.empty()) throw Error("no images to preprocess");
  std::vector<cv::Mat> sized;
  sized.reserve(bgr_images.size());
  for (const auto& img : bgr_images) {
    if (img.empty() || img.type() != CV_8UC3) throw Error("preprocess expects non-empty 8-bit BGR images");
    sized.push_back(resize_square(img, size));
  }
  // (pixel - 127.5) / 127.5 with BGR -> RGB.
  return cv::dnn::blobFromImages(sized, 1.0 / 127.5, cv::Size(size, size), cv::Scalar(127.5, 127.5, 127.5),
                                 /*swapRB=*/true, /*crop=*/false, CV_32F);
}

cv::Mat center_square(const cv::Mat& image) {
  const int side = std::min(image.cols, image.rows);
  return image(cv::Rect((image.cols - side) / 2, (image.rows - side) / 2, side, side));
}

}  // namespace maskwatch
