// Atomic image writes for plots, snapshots and annotated copies.
#pragma once
#include <filesystem>
#include <opencv2/core.hpp>

namespace maskwatch {

// Writes the image (.png, or .jpg at quality 95, from the extension) under a temporary name and
// renames it into place; creates the parent folder. Throws Error on failure.
void save_png(const std::filesystem::path& path, const cv::Mat& image);
// The same for a plot that may have nothing to show this time (an empty image): then the file an
// earlier run left at `path` is removed, so a folder never holds a stale sheet beside fresh ones.
void save_png_or_remove(const std::filesystem::path& path, const cv::Mat& image);

}  // namespace maskwatch
