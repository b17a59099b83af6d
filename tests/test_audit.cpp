// `maskwatch audit` finds labels that are wrong on purpose, and reuses its cached features.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "support.h"
#include "util/json_io.h"

using namespace maskwatch::test;

TEST(Audit, RanksDeliberatelyWrongLabelsFirst) {
  TempDir d;
  // 50 real photos per class from real-masks, plus 5 masked faces filed under without_mask.
  const auto real = shared_path("data/real-masks");
  std::vector<fs::path> with, without;
  for (const auto& e : fs::directory_iterator(real / "with_mask"))
    if (e.path().filename().string().rfind("jolignier__", 0) == 0) with.push_back(e.path());
  for (const auto& e : fs::directory_iterator(real / "without_mask"))
    if (e.path().filename().string().rfind("karan_trainingimages__", 0) == 0) without.push_back(e.path());
  std::sort(with.begin(), with.end());
  std::sort(without.begin(), without.end());
  ASSERT_GE(with.size(), 55u);
  ASSERT_GE(without.size(), 50u);
  std::set<std::string> planted;
  for (size_t i = 0; i < 55; ++i) {
    const bool wrong = i >= 50;
    const auto dst = d / "data" / (wrong ? "without_mask" : "with_mask") / with[i].filename();
    fs::create_directories(dst.parent_path());
    fs::create_symlink(with[i], dst);
    if (wrong) planted.insert("data/without_mask/" + with[i].filename().string());
  }
  for (size_t i = 0; i < 50; ++i) {
    fs::create_directories(d / "data/without_mask");
    fs::create_symlink(without[i], d / "data/without_mask" / without[i].filename());
  }
  const std::vector<std::string> args = {"audit",
                                         "--data",
                                         (d / "data").string(),
                                         "--out",
                                         (d / "audit").string(),
                                         "--input-size",
                                         "128",
                                         "--folds",
                                         "5",
                                         "--sheet",
                                         "20",
                                         "--threads",
                                         "1"};
  // A page of an earlier, longer run's contact sheet goes (it was left to be taken for this run's).
  fs::create_directories(d / "audit");
  write_bytes(d / "audit/audit-2.png", "old page");
  const auto r = run_cli(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(d / "audit/audit.png"));
  EXPECT_FALSE(fs::exists(d / "audit/audit-2.png"));
  EXPECT_NE(r.out.find("contact sheet of the top 20: "), std::string::npos) << r.out;
  // At least four of the five planted labels are among the 15 most suspicious of 105 images
  // (chance: 0.7 of one there, four or more once in about 770 runs). With the crops of
  // YuNet 2022 four were in the top ten; with the 2023 model's (the default detector since
  // 2026-12-03) three are, the other two at 12 and 13, behind real label noise of the source
  // (with_mask crops whose mask hardly shows).
  std::ifstream csv(d / "audit/audit.csv");
  std::string line;
  std::getline(csv, line);
  EXPECT_EQ(line, "rank,image,source,label,predicted,p_label,p_predicted,fold,flagged");
  int found = 0;
  for (int rank = 0; rank < 15 && std::getline(csv, line); ++rank) {
    std::stringstream ss(line);
    std::string cell, image;
    std::getline(ss, cell, ',');
    std::getline(ss, image, ',');
    found += planted.count(image) > 0;
  }
  EXPECT_GE(found, 4);
  const auto j = maskwatch::read_json(d / "audit/audit.json");
  EXPECT_EQ(j["images"], 105);
  EXPECT_GE(j["flagged"].get<int>(), 4);
  // A second run reuses the cached features.
  const auto again = run_cli(args);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.out.find("cached features"), std::string::npos) << again.out;
  // An audit stopped while computing features goes on from the rows it had saved (every 30 s):
  // here the first 40 of 105 (header: magic 8, key 64, rows 8, columns 8; then float rows).
  const std::string full = read_bytes(d / "audit/features.bin");
  int64_t rows = 0, cols = 0;
  std::memcpy(&rows, full.data() + 72, 8);
  std::memcpy(&cols, full.data() + 80, 8);
  ASSERT_EQ(rows, 105);
  std::string partial = full.substr(0, 88 + static_cast<size_t>(40 * cols * 4));
  const int64_t forty = 40;
  std::memcpy(partial.data() + 72, &forty, 8);
  write_bytes(d / "audit/features.bin", partial);
  const auto resumed = run_cli(args);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE((resumed.out + resumed.err).find("going on from image 40 of 105"), std::string::npos) << resumed.err;
  const std::string again_full = read_bytes(d / "audit/features.bin");
  ASSERT_EQ(again_full.size(), full.size());
  float worst = 0;
  for (size_t k = 88; k + 4 <= full.size(); k += 4) {
    float a = 0, b = 0;
    std::memcpy(&a, full.data() + k, 4);
    std::memcpy(&b, again_full.data() + k, 4);
    worst = std::max(worst, std::abs(a - b));
  }
  EXPECT_LT(worst, 1e-4f);
  // Another backbone under the same file name is another backbone: features computed again.
  fs::create_directories(d / "bb");
  fs::copy_file(asset("tf2_mobilenet_v2_1.0_224_ptq.tflite"), d / "bb/mobilenet_v2_1.0_224_quant.tflite");
  auto other_args = args;
  other_args.push_back("--backbone");
  other_args.push_back((d / "bb/mobilenet_v2_1.0_224_quant.tflite").string());
  const auto other = run_cli(other_args);
  ASSERT_EQ(other.exit_code, 0) << other.err;
  EXPECT_EQ(other.out.find("cached features"), std::string::npos) << other.out;
}

// One image of a class: every fold's head either never saw the class or judged nothing; the
// audit reported "out-of-fold accuracy 50 %" and a "label error" from probabilities it never
// computed. Refused, naming the class.
TEST(Audit, AClassTooSmallForTheFoldsIsRefused) {
  TempDir d;
  const auto seed = shared_path("data/seed-masks");
  for (const char* cls : {"with_mask", "without_mask"}) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(seed / cls)) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    ASSERT_FALSE(files.empty());
    fs::create_directories(d / "data" / cls);
    fs::create_symlink(files[0], d / "data" / cls / files[0].filename());
  }
  // An earlier audit's feature cache in that folder stays: refused before features are computed.
  write_bytes(d / "audit/features.bin", "an earlier audit's features");
  const auto r = run_cli({"audit", "--data", (d / "data").string(), "--out", (d / "audit").string(), "--input-size",
                          "128", "--threads", "1"});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.err.find("has 1 image(s), all in one of the 5 folds"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(d / "audit/audit.csv"));
  EXPECT_EQ(read_bytes(d / "audit/features.bin"), "an earlier audit's features");
  // An exclude file none of whose lines names these folders says so (it had left all in silently).
  write_bytes(d / "exclude.txt", "with_mask/" + fs::directory_iterator(d / "data/with_mask")->path().filename().string());
  const auto ex = run_cli({"audit", "--data", (d / "data").string(), "--out", (d / "audit").string(), "--exclude",
                           (d / "exclude.txt").string(), "--threads", "1"});
  EXPECT_NE(ex.err.find("none of its 1 line(s) names an image in data"), std::string::npos) << ex.err;
  // An input size the backbone cannot take, and --out over a file: refused before any image is read.
  const auto tiny = run_cli({"audit", "--data", (d / "data").string(), "--out", (d / "audit").string(), "--input-size",
                             "7"});
  EXPECT_EQ(tiny.exit_code, 2);  // a usage error since 2026-12-07
  EXPECT_NE(tiny.err.find("input size 7 not supported: use a multiple of 32 from 96 to 224"), std::string::npos)
      << tiny.err;
  const auto over_file = run_cli({"audit", "--data", (d / "data").string(), "--out", (d / "exclude.txt").string()});
  EXPECT_EQ(over_file.exit_code, 1);
  EXPECT_EQ(over_file.err.find("decode"), std::string::npos) << over_file.err;
}
