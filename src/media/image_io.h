// Image loading that never crashes on bad files: returns an empty Mat (with a reason)
// when a file cannot be decoded. Grayscale, alpha (composited on grey), 16-bit and
// EXIF-rotated images all come back as upright 8-bit BGR.
#pragma once
#include <cstdint>
#include <filesystem>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

namespace maskwatch {

// Extensions decode_image reads (case-insensitive).
bool is_image_file(const std::filesystem::path& path);
// Extensions of video files (case-insensitive): told apart so that a still-image command can
// point at `run` instead of reading a first frame or leaving one out without a word.
bool is_video_file(const std::filesystem::path& path);
// Whether the file's first bytes are those of an image format the decoders know (JPEG, PNG,
// BMP, TIFF, WebP, PNM, JPEG 2000, GIF); true for a file that cannot be read (reading it says why).
bool has_image_signature(const std::filesystem::path& path);

// The image files directly in `dir`, sorted by name. Entries that cannot be inspected (a
// symlink loop, a dangling link, no permission) are skipped with a warning, never thrown,
// and counted in *skipped when given (a caller's "N skipped" includes them). Plain files that
// are not images by their extension are left out, with one info line that says how many.
std::vector<std::filesystem::path> list_image_files(const std::filesystem::path& dir, int* skipped = nullptr);

// Decodes encoded image bytes to 8-bit BGR, or returns empty with *why set. `warning` (when
// given) gets a reason for an image that decoded but lost pixels (a cut or damaged JPEG:
// libjpeg fills what is missing with grey and no error), which callers count as a warning.
cv::Mat decode_image(const std::vector<uint8_t>& bytes, std::string* why = nullptr, std::string* warning = nullptr);

// Reads and decodes a file; empty with *why set on failure.
// `warning` as decode_image's.
cv::Mat load_image(const std::filesystem::path& path, std::string* why = nullptr, std::string* warning = nullptr);

// Like load_image but throws Error on failure.
cv::Mat load_image_or_throw(const std::filesystem::path& path);

}  // namespace maskwatch
