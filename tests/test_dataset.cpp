#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <sstream>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "data/dataset.h"
#include "media/image_io.h"
#include "support.h"
#include "util/error.h"

#include <functional>
#include <map>

using namespace maskwatch;
using namespace maskwatch::test;

namespace {

void write_jpeg(const fs::path& p, cv::Size size = {64, 48}, cv::Scalar color = {10, 200, 30}) {
  fs::create_directories(p.parent_path());
  ASSERT_TRUE(cv::imwrite(p.string(), cv::Mat(size, CV_8UC3, color)));
}

LoadOptions no_faces(int size) {
  LoadOptions o;
  o.size = size;
  o.face_crops = false;
  o.show_progress = false;
  return o;
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
  const auto ds = scan_datasets({d.path});
  EXPECT_EQ(ds.classes, (std::vector<std::string>{"apple", "mango", "zebra"}));
  ASSERT_EQ(ds.items.size(), 4u);
  EXPECT_EQ(ds.items[0].rel, d.path.filename().string() + "/apple/b.jpg");
  EXPECT_EQ(ds.items[1].rel, d.path.filename().string() + "/apple/nested/c.JPG");
  EXPECT_EQ(ds.items[3].label, 2);
  EXPECT_EQ(ds.ignored_files, 1u);
}

TEST(Dataset, RefusesFoldersThatCannotTrain) {
  TempDir d;
  EXPECT_THROW(scan_datasets({d / "missing"}), Error);
  write_jpeg(d / "only/a.jpg");
  EXPECT_THROW(scan_datasets({d.path}), Error);  // one class
  fs::create_directories(d / "empty");
  write_bytes(d / "empty/readme.txt", "no images here");
  try {
    scan_datasets({d.path});
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
  auto ds = scan_datasets({d.path});
  const auto images = load_dataset_images(ds, no_faces(96));
  EXPECT_EQ(images.size(), 2u);
  ASSERT_EQ(ds.skipped.size(), 2u);
  EXPECT_EQ(ds.skipped[0].rel, d.path.filename().string() + "/a/broken.jpg");
  EXPECT_EQ(ds.summary()["skipped_count"], 2);
  for (const auto& m : images) EXPECT_EQ(m.size(), cv::Size(96, 96));
}

TEST(Dataset, TruncatedAndTinyImagesAreUsedButNamed) {
  // They decode (half grey, or one pixel) and trained without a word; now they are named in
  // a warning and in the data summary (metrics.json), and still used (a split names them).
  TempDir d;
  write_jpeg(d / "a/good.jpg", {64, 48});
  write_jpeg(d / "a/tiny.jpg", {1, 1});
  write_jpeg(d / "b/good.jpg", {64, 48});
  write_jpeg(d / "b/edge.jpg", {16, 40});  // 16 px: the smallest side still taken as is
  cv::Mat noise(240, 320, CV_8UC3);
  cv::randu(noise, 0, 255);  // scan data long enough to cut without cutting the headers
  std::vector<uint8_t> whole;
  cv::imencode(".jpg", noise, whole);
  write_bytes(d / "b/cut.jpg", std::string(whole.begin(), whole.begin() + whole.size() * 2 / 3));
  auto ds = scan_datasets({d.path});
  const auto images = load_dataset_images(ds, no_faces(96));
  EXPECT_EQ(images.size(), 5u);
  EXPECT_TRUE(ds.skipped.empty());
  ASSERT_EQ(ds.doubtful.size(), 2u);
  const std::string root = d.path.filename().string();
  EXPECT_EQ(ds.doubtful[0].rel, root + "/a/tiny.jpg");
  EXPECT_EQ(ds.doubtful[0].reason, "1x1 px, too small to show a face");
  EXPECT_EQ(ds.doubtful[1].rel, root + "/b/cut.jpg");
  EXPECT_NE(ds.doubtful[1].reason.find("truncated JPEG"), std::string::npos);
  EXPECT_EQ(ds.summary()["used_with_warning"].size(), 2u);
}

TEST(Dataset, AClassWithOnlyBrokenImagesIsRefused) {
  TempDir d;
  write_jpeg(d / "a/good.jpg");
  write_bytes(d / "b/broken.jpg", "garbage");
  auto ds = scan_datasets({d.path});
  EXPECT_THROW(load_dataset_images(ds, no_faces(96)), Error);
}

TEST(Dataset, ManifestChangesWhenAFileChanges) {
  TempDir d;
  write_jpeg(d / "a/1.jpg");
  write_jpeg(d / "b/1.jpg");
  auto ds1 = scan_datasets({d.path});
  load_dataset_images(ds1, no_faces(96));
  auto ds2 = scan_datasets({d.path});
  load_dataset_images(ds2, no_faces(96));
  EXPECT_EQ(ds1.manifest_sha256(), ds2.manifest_sha256());
  write_jpeg(d / "b/1.jpg", {64, 48}, {1, 2, 3});
  auto ds3 = scan_datasets({d.path});
  load_dataset_images(ds3, no_faces(96));
  EXPECT_NE(ds1.manifest_sha256(), ds3.manifest_sha256());
}

TEST(ImageIo, GrayAlphaSixteenBitTinyAndLargeImagesBecomeBgr8) {
  TempDir d;
  cv::Mat gray(30, 40, CV_8UC1, cv::Scalar(77));
  cv::imwrite((d / "gray.png").string(), gray);
  cv::Mat rgba(30, 40, CV_8UC4, cv::Scalar(0, 0, 255, 0));         // fully transparent red
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
  EXPECT_EQ(a.at<cv::Vec3b>(5, 5), cv::Vec3b(255, 0, 0));       // opaque blue stays blue
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
  // A large file that is no image (zeros) is refused by its first bytes, not read whole: a
  // 1 GB one took 2 GB of memory before it was refused.
  write_bytes(d / "zeros.jpg", "");
  fs::resize_file(d / "zeros.jpg", 200u << 20);  // sparse: no disk used
  EXPECT_TRUE(load_image(d / "zeros.jpg", &why).empty());
  EXPECT_EQ(why,
            "its first bytes are not those of a JPEG, PNG, BMP, TIFF, WebP, PNM, JPEG 2000 or GIF, and at 200 MB it is "
            "too large to try as anything else");
  EXPECT_TRUE(is_image_file("a/B.JPEG"));
  EXPECT_FALSE(is_image_file("a/b.txt"));
}

TEST(Dataset, SeveralFoldersMergeClassesByNameAndKeepTheirSources) {
  TempDir d;
  write_jpeg(d / "seed/with_mask/a.jpg");
  write_jpeg(d / "seed/without_mask/b.jpg");
  write_jpeg(d / "real/with_mask/jolly__1.jpg");
  write_jpeg(d / "real/without_mask/karan__2.jpg");
  write_jpeg(d / "real/without_mask/karan__3.jpg");
  write_jpeg(d / "odd/mask_worn_incorrectly/jolly__4.jpg");
  ScanOptions o;
  o.class_map = {{"mask_worn_incorrectly", "without_mask"}};
  const auto ds = scan_datasets({d / "seed", d / "real", d / "odd"}, o);
  EXPECT_EQ(ds.classes, (std::vector<std::string>{"with_mask", "without_mask"}));
  ASSERT_EQ(ds.items.size(), 6u);
  EXPECT_EQ(ds.class_counts(), (std::vector<int>{2, 4}));
  // The folded folder is a source of its own: reported (and weighted) apart from jolly's with/without.
  EXPECT_EQ(ds.sources(), (std::vector<std::string>{"jolly", "jolly/mask_worn_incorrectly", "karan", "seed"}));
  std::map<std::string, std::string> source_of;
  for (const auto& it : ds.items) source_of[it.rel] = it.source;
  EXPECT_EQ(source_of["odd/mask_worn_incorrectly/jolly__4.jpg"], "jolly/mask_worn_incorrectly");
  EXPECT_EQ(source_of["real/with_mask/jolly__1.jpg"], "jolly");
  EXPECT_EQ(source_of["seed/with_mask/a.jpg"], "seed");
  // Without the map the odd folder is a third class.
  EXPECT_EQ(scan_datasets({d / "seed", d / "odd"}).classes.size(), 3u);

  // --source-weight: one key weights the chin masks folded or as a class of their own, and
  // a source's weight covers all its classes.
  const std::map<std::string, double> w{{"jolly/mask_worn_incorrectly", 6}, {"karan", 2}};
  std::map<std::string, double> folded;
  for (const auto& it : ds.items) folded[it.rel] = ds.weight_of(it, w);
  EXPECT_EQ(folded["odd/mask_worn_incorrectly/jolly__4.jpg"], 6);
  EXPECT_EQ(folded["real/with_mask/jolly__1.jpg"], 1);
  EXPECT_EQ(folded["real/without_mask/karan__3.jpg"], 2);
  EXPECT_EQ(folded["seed/with_mask/a.jpg"], 1);
  const auto three = scan_datasets({d / "real", d / "odd"});
  ASSERT_EQ(three.sources(), (std::vector<std::string>{"jolly", "karan"}));
  std::map<std::string, double> own_class;
  for (const auto& it : three.items) own_class[it.rel] = three.weight_of(it, w);
  EXPECT_EQ(own_class["odd/mask_worn_incorrectly/jolly__4.jpg"], 6);
  EXPECT_EQ(own_class["real/with_mask/jolly__1.jpg"], 1);
  EXPECT_TRUE(three.has_weight_key("jolly/mask_worn_incorrectly"));
  EXPECT_TRUE(three.has_weight_key("karan/without_mask"));
  EXPECT_FALSE(three.has_weight_key("karan/with_mask"));  // karan has no masked image here
  EXPECT_FALSE(three.has_weight_key("seed"));
}

TEST(Dataset, BadSourcesMapsAndExclusionsAreClearErrors) {
  TempDir d;
  write_jpeg(d / "a/data/with_mask/x.jpg");
  write_jpeg(d / "a/data/without_mask/y.jpg");
  write_jpeg(d / "b/data/with_mask/z.jpg");
  fs::create_directories(d / "flat");
  write_jpeg(d / "flat/loose.jpg");
  const auto message = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([&] {
              scan_datasets({d / "a/data", d / "b/data"});
            }).find("two data folders are named 'data'"),
            std::string::npos);
  // One folder under two names counted every image twice.
  fs::create_directory_symlink(d / "a/data", d / "link");
  EXPECT_NE(message([&] {
              scan_datasets({d / "a/data", d / "link"});
            }).find("are the same folder: its images would count twice"),
            std::string::npos);
  EXPECT_NE(message([&] { scan_datasets({d / "flat"}); }).find("no class folders"), std::string::npos);
  ScanOptions bad_map;
  bad_map.class_map = {{"mask_worn_incorrectly", "without_mask"}};
  EXPECT_NE(message([&] { scan_datasets({d / "a/data"}, bad_map); }).find("no data folder has a class folder named"),
            std::string::npos);
  EXPECT_THROW(parse_class_mapping("without_equals"), Error);
  EXPECT_THROW(parse_class_mapping("=x"), Error);

  ScanOptions ex;
  ex.exclude_file = d / "exclude.txt";
  write_bytes(ex.exclude_file,
              "# reviewed by eye\ndata/with_mask/x.jpg  # unmasked bystander\nother-set/with_mask/q.jpg\n\n");
  write_jpeg(d / "a/data/with_mask/w.jpg");
  const auto ds = scan_datasets({d / "a/data"}, ex);
  EXPECT_EQ(ds.items.size(), 2u);
  EXPECT_EQ(ds.excluded, 1u);
  EXPECT_EQ(ds.exclude_lines_for_other_folders, 1u);
  write_bytes(ex.exclude_file, "data/with_mask/not-there.jpg\n");
  const auto stale = message([&] { scan_datasets({d / "a/data"}, ex); });
  EXPECT_NE(stale.find("line 1"), std::string::npos) << stale;
  EXPECT_NE(stale.find("names no image"), std::string::npos) << stale;
  // A folder or a binary file given as the list is an error, not a list that excludes nothing.
  ex.exclude_file = d / "a";
  EXPECT_NE(message([&] { scan_datasets({d / "a/data"}, ex); }).find("is a directory"), std::string::npos);
  ex.exclude_file = d / "a/data/with_mask/w.jpg";
  EXPECT_NE(message([&] { scan_datasets({d / "a/data"}, ex); }).find("not a text file"), std::string::npos);

  // One class folder mapped to two classes is refused; the same mapping twice is harmless.
  EXPECT_EQ(parse_class_mappings({"a=with_mask", "b=without_mask", "a=with_mask"}),
            (std::map<std::string, std::string>{{"a", "with_mask"}, {"b", "without_mask"}}));
  EXPECT_NE(message([] { parse_class_mappings({"a=with_mask", "a=without_mask"}); }).find("already mapped to 'with_mask'"),
            std::string::npos);
}

TEST(Dataset, ManifestPhotoIdsGroupCropsOfOnePhoto) {
  TempDir d;
  write_jpeg(d / "real/with_mask/src__p1_0.jpg");
  write_jpeg(d / "real/without_mask/src__p1_1.jpg");
  write_jpeg(d / "real/without_mask/src__p2_0 with space.jpg");
  write_bytes(d / "real/MANIFEST.csv",
              "file,source,repo,commit,path\nwith_mask/src__p1_0.jpg,src,org/repo,abc,img/p1.jpg\n"
              "without_mask/src__p1_1.jpg,src,org/repo,abc,img/p1.jpg\n"
              "without_mask/src__p2_0 with space.jpg,src,org/repo,abc,img/p2.jpg\n");
  const auto ds = scan_datasets({d / "real"});
  std::map<std::string, std::string> photo;
  for (const auto& it : ds.items) photo[it.rel] = it.photo;
  EXPECT_EQ(photo["real/with_mask/src__p1_0.jpg"], "org/repo:img/p1.jpg");
  EXPECT_EQ(photo["real/without_mask/src__p1_1.jpg"], "org/repo:img/p1.jpg");
  EXPECT_EQ(photo["real/without_mask/src__p2_0 with space.jpg"], "org/repo:img/p2.jpg");
}

TEST(Dataset, ASymlinkLoopInAClassFolderIsSkipped) {
  TempDir d;
  write_jpeg(d / "data/a/1.jpg");
  write_jpeg(d / "data/b/2.jpg");
  fs::create_symlink("loop", d / "data/a/loop");                   // points at itself
  fs::create_directory_symlink(d / "data/a", d / "data/a/cycle");  // a directory cycle
  fs::create_symlink(d / "gone.jpg", d / "data/a/gone.jpg");      // a link to nothing: said
  CapturedLog log;
  const auto ds = scan_datasets({d / "data"});
  EXPECT_EQ(ds.items.size(), 2u);
  EXPECT_NE(log.text().find("gone.jpg: skipped, a link to a file that is not there"), std::string::npos) << log.text();
}

TEST(Dataset, ANameThatIsNotUtf8IsSkippedNotWrittenIntoASplitItCannotBeReadFrom) {
  // split.json stored it with a replacement character, and --resume then could not find it.
  TempDir d;
  write_jpeg(d / "data/a/1.jpg");
  write_jpeg(d / "data/a/bad\xffname.jpg");
  write_jpeg(d / "data/b/2 \xc3\xa9t\xc3\xa9.jpg");  // UTF-8 (été): kept
  const auto ds = scan_datasets({d / "data"});
  ASSERT_EQ(ds.items.size(), 2u);
  EXPECT_EQ(ds.items[1].rel, "data/b/2 \xc3\xa9t\xc3\xa9.jpg");
  EXPECT_EQ(ds.ignored_files, 1u);
}
