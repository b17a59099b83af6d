#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "data/dataset.h"
#include "data/image_io.h"
#include "support.h"
#include "util/error.h"

using namespace maskwatch;
using namespace maskwatch::test;

namespace {

void write_jpeg(const fs::path& p, cv::Size size = {64, 48}, cv::Scalar color = {10, 200, 30}) {
  fs::create_directories(p.parent_path());
  ASSERT_TRUE(cv::imwrite(p.string(), cv::Mat(size, CV_8UC3, color)));
}

// A JPEG whose EXIF says "rotate 90 degrees clockwise to display" (orientation 6).
std::string jpeg_with_exif_orientation_6(const cv::Mat& img) {
  std::vector<uchar> jpg;
  cv::imencode(".jpg", img, jpg);
  // APP1 Exif: "Exif\0\0" + little-endian TIFF header + IFD0 with one entry (0x0112 SHORT 1 = 6).
  const unsigned char tiff[] = {'I', 'I', 42, 0, 8, 0, 0, 0,  // header, IFD0 at offset 8
                                1, 0,                          // one entry
                                0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0,  // Orientation = 6
                                0, 0, 0, 0};                   // no next IFD
  std::string app1 = std::string("Exif\0\0", 6) + std::string(reinterpret_cast<const char*>(tiff), sizeof tiff);
  const size_t len = app1.size() + 2;
  std::string segment = {'\xFF', '\xE1', static_cast<char>(len >> 8), static_cast<char>(len & 0xFF)};
  segment += app1;
  std::string out(reinterpret_cast<const char*>(jpg.data()), jpg.size());
  out.insert(2, segment);  // right after SOI
  return out;
}

}  // namespace

TEST(Dataset, ScansClassFoldersSortedAndIgnoresOtherFiles) {
  TempDir d;
  write_jpeg(d / "zebra/a.jpg");
  write_jpeg(d / "apple/b.jpg");
  write_jpeg(d / "apple/nested/c.JPG");
  write_jpeg(d / "mango/d.png");
  write_bytes(d / "apple/notes.txt", "hello");
  write_bytes(d / "README.md", "top-level file, not a class");
  fs::create_directories(d / ".hidden");
  const auto ds = scan_dataset(d.path);
  EXPECT_EQ(ds.classes, (std::vector<std::string>{"apple", "mango", "zebra"}));
  ASSERT_EQ(ds.items.size(), 4u);
  EXPECT_EQ(ds.items[0].rel, "apple/b.jpg");
  EXPECT_EQ(ds.items[1].rel, "apple/nested/c.JPG");
  EXPECT_EQ(ds.items[3].label, 2);
  EXPECT_EQ(ds.ignored_files, 1u);
}

TEST(Dataset, RefusesFoldersThatCannotTrain) {
  TempDir d;
  EXPECT_THROW(scan_dataset(d / "missing"), Error);
  write_jpeg(d / "only/a.jpg");
  EXPECT_THROW(scan_dataset(d.path), Error);  // one class
  fs::create_directories(d / "empty");
  write_bytes(d / "empty/readme.txt", "no images here");
  try {
    scan_dataset(d.path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("empty"), std::string::npos) << e.what();
  }
}

TEST(Dataset, SkipsUndecodableImagesAndListsThem) {
  TempDir d;
  write_jpeg(d / "a/good.jpg");
  write_bytes(d / "a/broken.jpg", "this is not a jpeg at all");
  write_jpeg(d / "b/good.jpg");
  write_bytes(d / "b/empty.png", "");
  auto ds = scan_dataset(d.path);
  const auto images = load_dataset_images(ds, 96, false);
  EXPECT_EQ(images.size(), 2u);
  ASSERT_EQ(ds.skipped.size(), 2u);
  EXPECT_EQ(ds.skipped[0].rel, "a/broken.jpg");
  EXPECT_EQ(ds.summary()["skipped_count"], 2);
  for (const auto& m : images) EXPECT_EQ(m.size(), cv::Size(96, 96));
}

TEST(Dataset, AClassWithOnlyBrokenImagesIsRefused) {
  TempDir d;
  write_jpeg(d / "a/good.jpg");
  write_bytes(d / "b/broken.jpg", "garbage");
  auto ds = scan_dataset(d.path);
  EXPECT_THROW(load_dataset_images(ds, 96, false), Error);
}

TEST(Dataset, ManifestChangesWhenAFileChanges) {
  TempDir d;
  write_jpeg(d / "a/1.jpg");
  write_jpeg(d / "b/1.jpg");
  auto ds1 = scan_dataset(d.path);
  load_dataset_images(ds1, 96, false);
  auto ds2 = scan_dataset(d.path);
  load_dataset_images(ds2, 96, false);
  EXPECT_EQ(ds1.manifest_sha256(), ds2.manifest_sha256());
  write_jpeg(d / "b/1.jpg", {64, 48}, {1, 2, 3});
  auto ds3 = scan_dataset(d.path);
  load_dataset_images(ds3, 96, false);
  EXPECT_NE(ds1.manifest_sha256(), ds3.manifest_sha256());
}

TEST(ImageIo, GrayAlphaSixteenBitTinyAndLargeImagesBecomeBgr8) {
  TempDir d;
  cv::Mat gray(30, 40, CV_8UC1, cv::Scalar(77));
  cv::imwrite((d / "gray.png").string(), gray);
  cv::Mat rgba(30, 40, CV_8UC4, cv::Scalar(0, 0, 255, 0));  // fully transparent red
  rgba(cv::Rect(0, 0, 20, 30)).setTo(cv::Scalar(255, 0, 0, 255));  // left half opaque blue
  cv::imwrite((d / "alpha.png").string(), rgba);
  cv::Mat deep(30, 40, CV_16UC3, cv::Scalar(65535, 0, 32896));
  cv::imwrite((d / "deep.png").string(), deep);
  cv::imwrite((d / "tiny.jpg").string(), cv::Mat(1, 1, CV_8UC3, cv::Scalar(5, 5, 5)));
  cv::imwrite((d / "large.jpg").string(), cv::Mat(4000, 6000, CV_8UC3, cv::Scalar(9, 9, 9)));

  const cv::Mat g = load_image_or_throw(d / "gray.png");
  EXPECT_EQ(g.type(), CV_8UC3);
  EXPECT_EQ(g.at<cv::Vec3b>(5, 5), cv::Vec3b(77, 77, 77));
  const cv::Mat a = load_image_or_throw(d / "alpha.png");
  EXPECT_EQ(a.type(), CV_8UC3);
  EXPECT_EQ(a.at<cv::Vec3b>(5, 5), cv::Vec3b(255, 0, 0));      // opaque blue stays blue
  EXPECT_EQ(a.at<cv::Vec3b>(5, 35), cv::Vec3b(128, 128, 128));  // transparent -> grey, not red
  const cv::Mat h = load_image_or_throw(d / "deep.png");
  EXPECT_EQ(h.type(), CV_8UC3);
  EXPECT_EQ(h.at<cv::Vec3b>(5, 5), cv::Vec3b(255, 0, 128));
  EXPECT_EQ(load_image_or_throw(d / "tiny.jpg").size(), cv::Size(1, 1));
  EXPECT_EQ(load_image_or_throw(d / "large.jpg").size(), cv::Size(6000, 4000));
}

TEST(ImageIo, ExifOrientationIsApplied) {
  TempDir d;
  cv::Mat img(40, 80, CV_8UC3, cv::Scalar(0, 0, 0));  // wide, with a white left edge
  img(cv::Rect(0, 0, 10, 40)).setTo(cv::Scalar(255, 255, 255));
  write_bytes(d / "rotated.jpg", jpeg_with_exif_orientation_6(img));
  const cv::Mat out = load_image_or_throw(d / "rotated.jpg");
  EXPECT_EQ(out.size(), cv::Size(40, 80));  // turned upright: now tall
  // Rotating 90 degrees clockwise moves the white left edge to the top.
  EXPECT_GT(out.at<cv::Vec3b>(3, 20)[0], 200);
  EXPECT_LT(out.at<cv::Vec3b>(70, 20)[0], 60);
}

TEST(ImageIo, NonImagesGiveAReasonNotACrash) {
  TempDir d;
  write_bytes(d / "x.jpg", std::string(1000, '\x01'));
  std::string why;
  EXPECT_TRUE(load_image(d / "x.jpg", &why).empty());
  EXPECT_FALSE(why.empty());
  EXPECT_TRUE(load_image(d / "missing.jpg", &why).empty());
  EXPECT_THROW(load_image_or_throw(d / "x.jpg"), Error);
  EXPECT_TRUE(is_image_file("a/B.JPEG"));
  EXPECT_FALSE(is_image_file("a/b.txt"));
}
