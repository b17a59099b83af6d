#include "media/save_png.h"

#include "media/image_codec.h"
#include "util/error.h"
#include "util/files.h"

namespace maskwatch {

void save_png(const std::filesystem::path& path, const cv::Mat& image) {
  const std::string ext = lower_extension(path);
  std::vector<uint8_t> bytes;
  if (ext == ".png")
    bytes = encode_png(image);
  else if (ext == ".jpg" || ext == ".jpeg")
    bytes = encode_jpeg(image, 95);
  else
    throw Error("cannot write " + path.string() + ": images are written as .png or .jpg");
  write_file_atomic(path, bytes.data(), bytes.size());
}

void save_png_or_remove(const std::filesystem::path& path, const cv::Mat& image) {
  if (!image.empty()) return save_png(path, image);
  std::error_code ec;
  std::filesystem::remove(path, ec);
}

}  // namespace maskwatch
