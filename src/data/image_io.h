// Image loading that never crashes on bad files: returns an empty Mat (with a reason)
// when a file cannot be decoded. Grayscale, alpha, 16-bit and EXIF-rotated images all
// come back as upright 8-bit BGR.
#pragma once
#include <filesystem>
#include <opencv2/core.hpp>
#include <string>

namespace maskwatch {

// Extensions OpenCV can decode here (lowercase, with dot).
bool is_image_file(const std::filesystem::path& path);

// Decoded 8-bit BGR image, or empty with *why set.
cv::Mat load_image(const std::filesystem::path& path, std::string* why = nullptr);

// Like load_image but throws Error on failure.
cv::Mat load_image_or_throw(const std::filesystem::path& path);

}  // namespace maskwatch
