// Pascal VOC annotations (annotations/*.xml beside images/): image file name, size, and
// labelled boxes. Malformed files and boxes outside the image give a clear error naming the
// file (a silently clipped or dropped box would skew every metric computed from it).
#pragma once
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

namespace maskwatch {

struct VocObject {
  std::string name;
  cv::Rect2f box;  // xmin, ymin, width, height in pixels
  bool difficult = false;
};

struct VocAnnotation {
  std::filesystem::path xml;
  std::string filename;  // as written in the file
  int width = 0, height = 0;
  std::vector<VocObject> objects;
};

// Throws Error("<file>: ...") on malformed XML, missing fields, or boxes outside the image
// (beyond a 1-pixel tolerance for VOC's 1-based coordinates).
VocAnnotation parse_voc(const std::filesystem::path& xml_path);

// DIR/annotations/*.xml in sorted order (the order scene ids and the odd/even halves follow).
// Throws Error when there is no annotations/ folder or no .xml in it.
std::vector<std::filesystem::path> voc_annotation_files(const std::filesystem::path& dir);

// The image an annotation describes: DIR/images/<filename>, else DIR/images/<xml stem>.<image
// extension>; empty when neither exists.
std::filesystem::path voc_image_path(const std::filesystem::path& dir, const VocAnnotation& a);

// Throws when the image is not the size its annotation says (its boxes would lie elsewhere):
// the check `eval --scenes` and `train-faces` share.
void check_voc_image_size(const VocAnnotation& a, const std::filesystem::path& image_path, cv::Size image);

// Image file names of the scenes whose index in voc_annotation_files order has this parity
// (0 even, 1 odd): the halves `eval --scenes --fit-boxes` fits on (even) and scores on (odd),
// `train-faces --hold-out` leaves out and `eval --scenes --half` reports.
std::set<std::string> voc_scenes_of_parity(const std::filesystem::path& dir, int parity);

}  // namespace maskwatch
