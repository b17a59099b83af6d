// Shrinking an image by pixel-area averaging: what cv::resize(..., INTER_AREA) computes, in
// less time where the ratio is not a whole number. Every frame is shrunk so before the face
// detector sees it (640x480 -> 384x288, a ratio of 5/3), and OpenCV 4.6 takes that case down a
// scalar path: about 1 ms of the detector's 4 on a 2-core VM, 26 ms for a 4000x3000 photo.
// Here each output row is first the weighted sum of its source rows (contiguous, so the
// compiler vectorises it), then each output pixel the weighted sum of that row's columns: 0.43
// and 6.4 ms (README "Shrinking the frame"). Each face's crop is shrunk to the classifier's
// input the same way (0.4-0.5 ms -> 0.2).
// Whole-number ratios keep OpenCV's own fast path.
#pragma once
#include <opencv2/core.hpp>

namespace maskwatch {

// dst = src shrunk to `size` by area averaging: equal to cv::resize(src, dst, size, 0, 0,
// cv::INTER_AREA) within one grey level (the sums are added in another order). 8-bit images
// of 1 to 4 channels shrunk (or kept) on both axes, not by whole numbers on both; anything else
// is handed to cv::resize. dst may be src, or a region of an image (written in place, as
// cv::resize writes it, when it has the size and type).
void shrink_area(const cv::Mat& src, cv::Mat& dst, cv::Size size);

}  // namespace maskwatch
