// Fusing the faces found in several looks at one still image (the image at two sizes, each
// also mirrored): `detect` and `eval --scenes` look four times where a video frame gets one
// look (README "Face stage": four looks at a still).
#pragma once
#include <vector>

#include "vision/face_detector.h"

namespace maskwatch {

// A face found in a mirrored copy of an image `frame_width` pixels wide, in the image's own
// coordinates: boxes and landmarks mirrored back, and left and right swapped in the landmarks
// (the mirror's right eye is the image's left eye). Haar's zero landmarks stay zeros.
Face unmirror_face(const Face& face, float frame_width);

// Weighted box fusion of the faces of `looks` (each look's faces already free of duplicates):
// strongest first, a face joins the cluster of another look's faces whose fused box overlaps
// it most at IoU >= `join_iou` (at most one face of each look per cluster), else starts its
// own. A cluster's boxes (shown and crop) are its faces' boxes averaged by score, its
// landmarks those of its strongest face, and its score the mean over all looks, a look that
// did not see it counting 0: a face every look finds keeps the mean of its scores, one that a
// single look out of four finds keeps a quarter of its score. Clusters scoring under `threshold` are dropped; of two
// fused boxes overlapping at IoU > `nms_iou`, the weaker is dropped. Strongest first.
std::vector<Face> fuse_looks(const std::vector<std::vector<Face>>& looks, float join_iou, float threshold,
                             float nms_iou);

}  // namespace maskwatch
