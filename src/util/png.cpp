#include "util/png.h"

#include <opencv2/imgcodecs.hpp>

#include "util/files.h"

namespace maskwatch {

void save_png(const std::filesystem::path& path, const cv::Mat& image) {
  write_atomic_with(path, [&](const std::filesystem::path& tmp) { return cv::imwrite(tmp.string(), image); });
}

}  // namespace maskwatch
