#include <gtest/gtest.h>

#include "data/augment.h"
#include "media/image_io.h"
#include "data/near_duplicates.h"
#include "model/preprocess.h"
#include "support.h"

using namespace maskwatch;
using namespace maskwatch::test;

namespace {
cv::Mat seed_image(const std::string& rel) {
  return resize_square(load_image_or_throw(shared_path("data/seed-masks/" + rel)), 224);
}
}  // namespace

TEST(NearDuplicates, AWarpedAndMirroredCopyIsFound) {
  const cv::Mat a = seed_image("without_mask/100.jpg");
  AffineParams p;
  p.rotation_deg = 15;
  p.zoom_x = p.zoom_y = 1.12;
  p.shift_x = 0.08;
  p.flip = true;
  EXPECT_TRUE(geometric_duplicate(a, augment_image(a, p, 224)));
}

TEST(NearDuplicates, DifferentPeopleWithTheSamePastedMaskAreNotDuplicates) {
  // The seed set's masks are one graphic: keypoints on it match between different people.
  const std::vector<std::string> masked = {"with_mask/108-with-mask.jpg", "with_mask/113-with-mask.jpg",
                                           "with_mask/120-with-mask.jpg", "with_mask/121-with-mask.jpg"};
  for (size_t i = 0; i < masked.size(); ++i)
    for (size_t j = i + 1; j < masked.size(); ++j)
      EXPECT_FALSE(geometric_duplicate(seed_image(masked[i]), seed_image(masked[j]))) << masked[i] << " " << masked[j];
}

TEST(NearDuplicates, GroupsCopiesAndLeavesOthersAlone) {
  // Four different photos, each with two augmented copies; embeddings: random but close for
  // copies, so only the geometric check separates look-alikes.
  const std::vector<std::string> files = {"without_mask/100.jpg", "without_mask/101.jpg", "with_mask/0-with-mask.jpg",
                                          "with_mask/10-with-mask.jpg"};
  std::vector<cv::Mat> images;
  std::vector<int> source;
  for (size_t f = 0; f < files.size(); ++f) {
    const cv::Mat a = seed_image(files[f]);
    images.push_back(a);
    source.push_back(static_cast<int>(f));
    for (int k = 0; k < 2; ++k) {
      AffineParams p = draw_affine(AugmentOptions{}, mix_seed(3, f, static_cast<uint64_t>(k)));
      p.shift_x *= 0.5;
      p.shift_y *= 0.5;
      images.push_back(augment_image(a, p, 224));
      source.push_back(static_cast<int>(f));
    }
  }
  // All embeddings nearly identical: every pair is a candidate, none is paired directly.
  cv::Mat e(static_cast<int>(images.size()), 8, CV_32F, cv::Scalar(1));
  cv::RNG rng(1);
  cv::Mat noise(e.size(), CV_32F);
  rng.fill(noise, cv::RNG::UNIFORM, -0.05, 0.05);
  e += noise;
  DuplicateOptions o;
  o.direct_cosine = 1.01;
  o.candidates_per_image = static_cast<int>(images.size()) - 1;
  const auto g = find_near_duplicates(images, e, e, o, false);
  for (size_t i = 0; i < images.size(); ++i)
    for (size_t j = 0; j < images.size(); ++j)
      EXPECT_EQ(g.group[i] == g.group[j], source[i] == source[j]) << i << " " << j;
  EXPECT_EQ(g.num_groups, 4);
}
