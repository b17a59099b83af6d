#include "data/image_io.h"

#include <algorithm>
#include <opencv2/imgcodecs.hpp>
#include <set>

#include "util/error.h"

namespace maskwatch {

bool is_image_file(const std::filesystem::path& path) {
  static const std::set<std::string> exts = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif",
                                             ".tiff", ".ppm", ".pgm", ".pbm", ".jpe", ".jp2"};
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return exts.count(ext) > 0;
}

cv::Mat load_image(const std::filesystem::path& path, std::string* why) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    if (why) *why = "not a file";
    return {};
  }
  cv::Mat img;
  try {
    // IMREAD_COLOR: 8-bit BGR whatever the source (gray, alpha, 16-bit), EXIF orientation applied.
    img = cv::imread(path.string(), cv::IMREAD_COLOR);
  } catch (const cv::Exception& e) {
    if (why) *why = std::string("decoder error: ") + e.what();
    return {};
  }
  if (img.empty()) {
    if (why) *why = "cannot be decoded as an image";
    return {};
  }
  return img;
}

cv::Mat load_image_or_throw(const std::filesystem::path& path) {
  std::string why;
  cv::Mat img = load_image(path, &why);
  if (img.empty()) throw Error("cannot read image " + path.string() + ": " + why);
  return img;
}

}  // namespace maskwatch
