// JPEG and PNG with libjpeg-turbo and libpng directly (see video_reader.h for why not
// OpenCV's imgcodecs). Decoding uses the settings OpenCV's imread uses with the same
// libraries, so pixels are identical (tests compare them on the shared data sets).
#pragma once
#include <cstdint>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

namespace maskwatch {

bool is_jpeg(const uint8_t* data, size_t size);
bool is_png(const uint8_t* data, size_t size);

// 8-bit BGR, EXIF orientation applied (as cv::imread does). Empty with *why on failure.
// `warning` (when given) is set for an image that decoded with pixels lost: a cut file, or
// corrupt data that libjpeg filled with grey (one it fills silently, as cv::imread does).
cv::Mat decode_jpeg(const uint8_t* data, size_t size, std::string* why = nullptr, std::string* warning = nullptr);
// As stored: 1, 3 (BGR) or 4 (BGRA) channels, 8 or 16 bit; palettes and low bit depths
// expanded to 8 bit, transparency chunks to alpha. Empty with *why on failure.
cv::Mat decode_png(const uint8_t* data, size_t size, std::string* why = nullptr);

// 8-bit 1- or 3-channel (BGR) image -> JPEG bytes (4:2:0, baseline). Throws Error otherwise.
std::vector<uint8_t> encode_jpeg(const cv::Mat& image, int quality = 95);
// 8-bit 1-, 3- (BGR) or 4-channel (BGRA) image -> PNG bytes. Throws Error otherwise.
std::vector<uint8_t> encode_png(const cv::Mat& image);

}  // namespace maskwatch
