// Finds near-duplicate images (rotated / flipped / zoomed / shifted copies, re-encodes) so
// the split can keep each group inside one of train, val or test.
//
// Two signals, because neither is enough alone:
//  1. Backbone embeddings: cosine similarity of pooled MobileNetV2 features, taking the
//     better of the image and its mirror. Very high similarity pairs images directly; a
//     lower one only nominates candidates.
//  2. Geometric verification of candidates: ORB keypoints matched (also against the mirrored
//     image), an affine fitted with RANSAC, then the first image warped onto the second and
//     compared cell by cell (normalised cross-correlation on a grid over their overlap).
//     Keypoints and whole-image correlation are not enough here: the seed set's masks are
//     one pasted graphic and many photos share a studio backdrop, so both agree between
//     photos of different people; their eyes, hair and mouths do not.
#pragma once
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "data/split.h"

namespace maskwatch {

struct DuplicateOptions {
  double direct_cosine = 0.97;     // embedding similarity that pairs without verification
  double candidate_cosine = 0.70;  // below this a pair is never considered
  // Measured on seed + real-masks (11,317 images at 160 px): 10 neighbours with 500 ORB
  // keypoints put 3,085 images in duplicate groups in 286 s; 8 with 250 keypoints 2,985 in
  // 69 s (5 with cosine >= 0.8 and 200 keypoints only 2,453).
  int candidates_per_image = 8;  // nearest neighbours verified per image
  // ORB keypoints per image (and per mirror) for the geometric check, for a 224x224 image;
  // scaled with the area (255 at 160 px): fewer on small images keep matching cheap.
  int orb_keypoints_at_224 = 500;
  int min_inliers = 12;             // RANSAC affine inliers
  double min_overlap = 0.35;        // overlap area / image area after warping
  int grid = 4;                     // cells per side for the local correlation check
  double min_cell_agreement = 0.8;  // share of textured cells that must correlate (NCC >= 0.7)
};

struct DuplicatePair {
  int a, b;
  double cosine;
  std::string how;  // "embedding" or "geometry"
};

struct DuplicateGroups {
  std::vector<int> group;  // group id per image (0..num_groups-1)
  int num_groups = 0;
  std::vector<DuplicatePair> pairs;
  size_t candidates = 0;  // pairs that were checked
  // Per image: its most similar other images (mirror-aware cosine, best first), used to
  // report leaks with a second, looser measure.
  std::vector<std::vector<std::pair<int, float>>> neighbours;
  nlohmann::json summary() const;
};

// Test images with a near-copy in train: by the detector (a detected pair crosses the
// split) and, looser, by embedding alone (a train image among the neighbours with cosine >=
// loose_cosine). Also the same counts for a plain random stratified split with the same
// seed, to show what grouping avoided.
nlohmann::json leak_report(const DuplicateGroups& groups, const std::vector<int>& labels,
                           const std::vector<std::string>& keys, int num_classes, const std::vector<Split>& split,
                           const SplitFractions& fractions, uint64_t seed,
                           double loose_cosine = 0.9);

// images: same-size BGR images; embeddings / mirrored_embeddings: [N x D] CV_32F rows
// (mirrored = the embedding of the horizontally flipped image). Uses all cores.
DuplicateGroups find_near_duplicates(const std::vector<cv::Mat>& images, const cv::Mat& embeddings,
                                     const cv::Mat& mirrored_embeddings, const DuplicateOptions& options = {},
                                     bool show_progress = true);

// Also groups images with the same non-empty key (crops cut from one original photo), on top
// of the near-duplicate groups. Returns how many group merges the keys caused.
int merge_groups_by_key(DuplicateGroups& groups, const std::vector<std::string>& keys);

// Geometric check of one pair (exposed for tests): true when b is a warped copy of a.
bool geometric_duplicate(const cv::Mat& a, const cv::Mat& b, const DuplicateOptions& options = {});

}  // namespace maskwatch
