#include <gtest/gtest.h>

#include <opencv2/imgproc.hpp>

#include "data/augment.h"

using namespace maskwatch;

namespace {
// An asymmetric test picture: a bright square in the top-left quadrant.
cv::Mat pattern(int size = 100) {
  cv::Mat img(size, size, CV_8UC3, cv::Scalar(20, 20, 20));
  cv::rectangle(img, cv::Rect(size / 10, size / 10, size / 4, size / 4), cv::Scalar(250, 250, 250), cv::FILLED);
  return img;
}
cv::Point2d centroid(const cv::Mat& bgr) {
  cv::Mat g;
  cv::cvtColor(bgr, g, cv::COLOR_BGR2GRAY);
  const auto m = cv::moments(g > 128, true);
  return {m.m10 / m.m00, m.m01 / m.m00};
}
}  // namespace

TEST(Augment, IdentityKeepsTheImage) {
  const cv::Mat img = pattern();
  const cv::Mat out = augment_image(img, AffineParams{}, 100);
  EXPECT_EQ(cv::norm(img, out, cv::NORM_INF), 0);
}

TEST(Augment, FlipMirrorsHorizontally) {
  AffineParams p;
  p.flip = true;
  const cv::Mat img = pattern();
  cv::Mat expected;
  cv::flip(img, expected, 1);
  EXPECT_LE(cv::norm(expected, augment_image(img, p, 100), cv::NORM_INF), 1);
}

TEST(Augment, ShiftMovesContentByTheFraction) {
  AffineParams p;
  p.shift_x = 0.2;
  p.shift_y = -0.1;
  const cv::Mat img = pattern(200);
  const auto before = centroid(img), after = centroid(augment_image(img, p, 200));
  EXPECT_NEAR(after.x - before.x, 40, 1);
  EXPECT_NEAR(after.y - before.y, -20, 1);
}

TEST(Augment, RotationTurnsAboutTheCentre) {
  AffineParams p;
  p.rotation_deg = 90;
  const cv::Matx23d m = affine_matrix(p, 101, 101);
  const cv::Vec3d centre(50, 50, 1), corner(0, 0, 1);
  const cv::Vec2d c = m * centre, k = m * corner;
  EXPECT_NEAR(c[0], 50, 1e-9);
  EXPECT_NEAR(c[1], 50, 1e-9);
  EXPECT_NEAR(k[0], 100, 1e-9);  // (0,0) -> (100,0): 90 degrees in image coordinates
  EXPECT_NEAR(k[1], 0, 1e-9);
}

TEST(Augment, ZoomScalesAboutTheCentre) {
  AffineParams p;
  p.zoom_x = 1.15;
  p.zoom_y = 0.85;
  const cv::Matx23d m = affine_matrix(p, 201, 201);
  const cv::Vec2d k = m * cv::Vec3d(200, 200, 1);
  EXPECT_NEAR(k[0], 100 + 100 * 1.15, 1e-9);
  EXPECT_NEAR(k[1], 100 + 100 * 0.85, 1e-9);
}

TEST(Augment, ParametersStayInTheirRangesAndFlipHalfTheTime) {
  AugmentOptions o;
  int flips = 0;
  double zmin = 9, zmax = 0, rmin = 99, rmax = -99;
  const int n = 4000;
  for (int i = 0; i < n; ++i) {
    const auto p = draw_affine(o, mix_seed(1, static_cast<uint64_t>(i)));
    EXPECT_LE(std::abs(p.rotation_deg), 20);
    EXPECT_LE(std::abs(p.shift_x), 0.2);
    EXPECT_LE(std::abs(p.shift_y), 0.2);
    EXPECT_LE(std::abs(p.shear_deg), 0.15);
    EXPECT_GE(p.zoom_x, 0.85);
    EXPECT_LE(p.zoom_x, 1.15);
    zmin = std::min(zmin, p.zoom_y);
    zmax = std::max(zmax, p.zoom_y);
    rmin = std::min(rmin, p.rotation_deg);
    rmax = std::max(rmax, p.rotation_deg);
    flips += p.flip;
  }
  EXPECT_NEAR(static_cast<double>(flips) / n, 0.5, 0.04);
  EXPECT_LT(zmin, 0.86);  // the whole range is used
  EXPECT_GT(zmax, 1.14);
  EXPECT_LT(rmin, -19);
  EXPECT_GT(rmax, 19);
  AugmentOptions off;
  off.enabled = false;
  const auto p = draw_affine(off, 123);
  EXPECT_EQ(p.rotation_deg, 0);
  EXPECT_FALSE(p.flip);
}

TEST(Augment, OutputSizeIsFixedWhateverTheInput) {
  const auto p = draw_affine(AugmentOptions{}, 5);
  for (const cv::Size s : {cv::Size(37, 300), cv::Size(1000, 640), cv::Size(224, 224)}) {
    const cv::Mat out = augment_image(cv::Mat(s, CV_8UC3, cv::Scalar(1, 2, 3)), p, 128);
    EXPECT_EQ(out.size(), cv::Size(128, 128));
    EXPECT_EQ(out.type(), CV_8UC3);
  }
}

TEST(Augment, SameSeedSameImageOtherSeedOtherImage) {
  const cv::Mat img = pattern(160);
  AugmentOptions o;
  const cv::Mat a = augment_image(img, draw_affine(o, mix_seed(7, 3, 11)), 160);
  const cv::Mat b = augment_image(img, draw_affine(o, mix_seed(7, 3, 11)), 160);
  const cv::Mat c = augment_image(img, draw_affine(o, mix_seed(7, 3, 12)), 160);
  EXPECT_EQ(cv::norm(a, b, cv::NORM_INF), 0);
  EXPECT_GT(cv::norm(a, c, cv::NORM_INF), 0);
}

TEST(Augment, BorderIsReplicatedNotBlack) {
  AffineParams p;
  p.shift_x = 0.2;  // exposes a strip on the left
  cv::Mat img(100, 100, CV_8UC3, cv::Scalar(200, 150, 100));
  const cv::Mat out = augment_image(img, p, 100);
  EXPECT_EQ(out.at<cv::Vec3b>(50, 2), cv::Vec3b(200, 150, 100));
}

TEST(Augment, ADimRoomTakesLightAwayInLinearLightAndLeavesTheOtherDrawsAlone) {
  PhotoOptions without_dim, always_dim;
  without_dim.dim_p = 0;
  always_dim.dim_p = 1;
  int dims = 0;
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    const auto a = draw_photo(without_dim, seed), b = draw_photo(always_dim, seed);
    // The dim room is drawn after everything else: the other effects are the same draws.
    EXPECT_EQ(a.brightness, b.brightness);
    EXPECT_EQ(a.jpeg_quality, b.jpeg_quality);
    EXPECT_EQ(a.noise_sigma, b.noise_sigma);
    EXPECT_EQ(a.dim_ev, 0);
    EXPECT_GE(b.dim_ev, -2.5);
    EXPECT_LE(b.dim_ev, -0.5);
    EXPECT_GE(b.dim_noise, 0.01);
    EXPECT_LE(b.dim_noise, 0.05);
    PhotoOptions some;
    some.dim_p = 0.15;
    dims += draw_photo(some, seed).dim_ev != 0;
    EXPECT_EQ(draw_photo(PhotoOptions{}, seed).dim_ev, 0);  // off by default
  }
  EXPECT_NEAR(dims, 30, 15);  // 0.15 of 200
  // -1 EV on mid grey (sRGB 128 = linear 0.2159) halves the linear light: 0.1080 is sRGB 92.
  // With noise of sigma 0.01 the mean stays there (92 +- 1).
  cv::Mat img(64, 64, CV_8UC3, cv::Scalar::all(128));
  PhotoParams p;
  p.dim_ev = -1;
  p.dim_noise = 0.01;
  p.dim_seed = 5;
  apply_photo(img, p);
  EXPECT_NEAR(cv::mean(img)[0], 92, 1.0);
  cv::Scalar mean, stddev;
  cv::meanStdDev(img, mean, stddev);
  EXPECT_GT(stddev[0], 2.0);  // the noise is there: ~0.01 / (slope of sRGB at 0.108) ~ 3.5 levels
}
