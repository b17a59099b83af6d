// End-to-end scene evaluation: the AP arithmetic on hand-made cases, VOC parsing and its
// errors, and `maskwatch eval --scenes` on a small VOC set pasted together from real crops.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "media/image_io.h"
#include "eval/scene_eval.h"
#include "eval/voc.h"
#include "support.h"
#include "util/error.h"
#include "util/json_io.h"

using namespace maskwatch;
using namespace maskwatch::test;

TEST(SceneEval, AllPointInterpolationByHand) {
  // Envelope of (0.5, 1), (0.5, 0.5), (1, 2/3): 0.5 x 1 + 0.5 x 2/3.
  EXPECT_NEAR(all_point_ap({0.5, 0.5, 1.0}, {1.0, 0.5, 2.0 / 3}), 0.5 + 1.0 / 3, 1e-12);
  EXPECT_NEAR(all_point_ap({0.25, 0.5, 0.75, 1.0}, {1, 1, 1, 1}), 1.0, 1e-12);
  EXPECT_NEAR(all_point_ap({}, {}), 0.0, 1e-12);
}

TEST(SceneEval, MatchingCountsDuplicatesIgnoresDifficultAndSmallBoxes) {
  const cv::Rect2f a(0, 0, 100, 100), b(200, 0, 100, 100), c(400, 0, 100, 100), ignore(0, 200, 100, 100),
      small(300, 300, 20, 20), empty(500, 300, 100, 100);
  const std::vector<GroundTruthBox> truth = {
      {0, a, 0, false}, {0, b, 0, false}, {0, c, 1, false}, {0, ignore, -1, false}, {0, small, 0, false}};
  const std::vector<ScoredBox> dets = {
      {0, a, 0.9, 0},       // TP
      {0, ignore, 0.8, 0},  // on a box of a class not evaluated: ignored
      {0, empty, 0.7, 0},   // FP
      {0, a, 0.6, 0},       // second detection of A: FP
      {0, b, 0.5, 0},       // TP
      {0, small, 0.4, 0},   // on a face under 32 px: ignored
      {0, c, 0.3, 1},       // another class: not counted for class 0
  };
  const auto r = average_precision(truth, dets, 0);
  EXPECT_EQ(r.positives, 2);
  EXPECT_EQ(r.tp, 2);
  EXPECT_EQ(r.fp, 2);
  EXPECT_EQ(r.ignored, 2);
  // TP, FP, FP, TP: recall .5 .5 .5 1, precision 1 .5 1/3 .5 -> 0.5 x 1 + 0.5 x 0.5.
  EXPECT_NEAR(r.ap, 0.75, 1e-12);
  const auto other = average_precision(truth, dets, 1);
  EXPECT_EQ(other.positives, 1);
  EXPECT_NEAR(other.ap, 1.0, 1e-12);
  // Class-agnostic: every counted box of any class is a positive (A, B, C).
  const auto any = average_precision(truth, dets, -1);
  EXPECT_EQ(any.positives, 3);
  EXPECT_EQ(any.tp, 3);
}

TEST(SceneEval, HeadlineScoresTheShownLabelAndEveryFalseFace) {
  // A, C: with_mask (class 0); B: without_mask (class 1); S: a face under 32 px (ignore region).
  const cv::Rect2f a(0, 0, 100, 100), b(200, 0, 100, 100), c(400, 0, 100, 100), s(0, 300, 20, 20),
      nothing(300, 300, 20, 20);
  const std::vector<GroundTruthBox> truth = {{0, a, 0}, {0, b, 1}, {0, c, 0}, {0, s, 0}};
  const auto face = [](cv::Rect2f box, float score, float p0) {
    const int label = p0 >= 0.5f ? 0 : 1;
    return SceneFace{0, box, score, label, label == 0 ? p0 : 1 - p0, {p0, 1 - p0}};
  };
  const std::vector<SceneFace> faces = {
      face(a, 1.0f, 0.9f),        // right: with_mask 0.9
      face(b, 1.0f, 0.7f),        // wrong argmax: shown as with_mask 0.7 on an unmasked face
      face(nothing, 0.9f, 0.2f),  // a small detection on no face: shown as without_mask 0.72
      face(s, 0.8f, 0.5f),        // on the small face: ignored
      face(c, 0.5f, 0.6f),        // right: with_mask 0.3
  };
  // Headline, with_mask: A 0.9 TP, B 0.7 FP, S 0.4 ignored, C 0.3 TP -> 0.5 x 1 + 0.5 x 2/3.
  const auto shown = shown_label_detections(faces);
  const auto with = average_precision(truth, shown, 0);
  EXPECT_EQ(with.tp, 2);
  EXPECT_EQ(with.fp, 1);
  EXPECT_EQ(with.ignored, 1);
  EXPECT_NEAR(with.ap, 0.5 + 0.5 * 2 / 3, 1e-12);
  // without_mask: its one face was shown as with_mask, and the small false face counts.
  const auto without = average_precision(truth, shown, 1);
  EXPECT_EQ(without.positives, 1);
  EXPECT_EQ(without.fp, 1);
  EXPECT_NEAR(without.ap, 0.0, 1e-12);
  ASSERT_EQ(without.false_positives.size(), 1u);
  EXPECT_EQ(shown[without.false_positives[0]].box, nothing);
  // Per-class-score variant, without_mask: nothing 0.72 FP, B 0.3 TP, C 0.2 FP, A 0.1 FP -> 0.5.
  const auto kind = per_class_score_detections(faces, 2);
  EXPECT_NEAR(average_precision(truth, kind, 1).ap, 0.5, 1e-12);
  EXPECT_NEAR(average_precision(truth, kind, 0).ap, 0.5 + 0.5 * 2 / 3, 1e-12);
  // Face AP: A, B TP (1.0), nothing FP (0.9), S ignored, C TP -> 2/3 x 1 + 1/3 x 3/4.
  const auto faces_ap = average_precision(truth, face_detections(faces), -1);
  EXPECT_EQ(faces_ap.positives, 3);
  EXPECT_NEAR(faces_ap.ap, 2.0 / 3 + 0.25, 1e-12);
  EXPECT_EQ(std::count(faces_ap.truth_found.begin(), faces_ap.truth_found.end(), 1), 3);
}

TEST(SceneEval, BoxFitRecoversAKnownSizeDependentCorrection) {
  // Labelled boxes are the detector's moved by (0.01 + 0.02 L, 0.05) x its size and scaled by
  // exp(0.1 - 0.05 L) x exp(-0.02 L), L = log2(width in detector pixels / 32).
  BoxCorrection known;
  known.dx[0] = 0.01f, known.dx[1] = 0.02f, known.dy[0] = 0.05f;
  known.lw[0] = 0.1f, known.lw[1] = -0.05f, known.lh[1] = -0.02f;
  std::vector<GroundTruthBox> truth;
  std::vector<SceneFace> faces;
  for (int i = 0; i < 12; ++i) {
    const cv::Rect2f d(10, 10, 40.0f + 25 * i, 50.0f + 30 * i);
    const double scale = i % 2 ? 0.5 : 1.0;
    faces.push_back({i, d, 0.9f, 0, 0.9f, {}, scale});
    truth.push_back({i, known.apply(d, scale), 0});
  }
  faces.push_back({0, {500, 500, 60, 60}, 0.3f, 0, 0.3f, {}, 1.0});  // under the score: not used
  truth.push_back({0, {600, 600, 10, 10}, 0});                       // under 32 px: not used
  int pairs = 0;
  const auto fit = fit_box_correction(truth, faces, 0.6f, 32, &pairs);
  EXPECT_EQ(pairs, 12);
  const float* got[4] = {fit.dx, fit.dy, fit.lw, fit.lh};
  const float* want[4] = {known.dx, known.dy, known.lw, known.lh};
  for (int k = 0; k < 4; ++k)
    for (int j = 0; j < 2; ++j) EXPECT_NEAR(got[k][j], want[k][j], 1e-4) << k << " " << j;
  EXPECT_TRUE(fit_box_correction(truth, {}, 0.6f).identity());
}

TEST(Voc, ParsesBoxesAndRefusesBadFiles) {
  TempDir d;
  write_bytes(d / "good.xml", R"(<annotation><filename>x.png</filename><size><width>640</width><height>480</height>
    <depth>3</depth></size><object><name>with_mask</name><bndbox><xmin>10</xmin><ymin>20</ymin><xmax>110</xmax>
    <ymax>140</ymax></bndbox></object><object><name>mask_weared_incorrect</name><difficult>1</difficult><bndbox>
    <xmin>0</xmin><ymin>0</ymin><xmax>640</xmax><ymax>480</ymax></bndbox></object></annotation>)");
  const auto a = parse_voc(d / "good.xml");
  EXPECT_EQ(a.filename, "x.png");
  ASSERT_EQ(a.objects.size(), 2u);
  EXPECT_EQ(a.objects[0].box, cv::Rect2f(10, 20, 100, 120));
  EXPECT_TRUE(a.objects[1].difficult);
  EXPECT_EQ(canonical_class_name(a.objects[1].name), "mask_worn_incorrectly");

  write_bytes(d / "broken.xml", "<annotation><size><width>640</width>");
  write_bytes(d / "outside.xml", R"(<annotation><size><width>100</width><height>100</height></size><object>
    <name>with_mask</name><bndbox><xmin>50</xmin><ymin>50</ymin><xmax>180</xmax><ymax>90</ymax></bndbox></object>
    </annotation>)");
  write_bytes(d / "nan.xml", R"(<annotation><size><width>100</width><height>100</height></size><object>
    <name>with_mask</name><bndbox><xmin>a</xmin><ymin>5</ymin><xmax>8</xmax><ymax>9</ymax></bndbox></object></annotation>)");
  write_bytes(d / "nan2.xml", R"(<annotation><size><width>100</width><height>100</height></size><object>
    <name>with_mask</name><bndbox><xmin>nan</xmin><ymin>5</ymin><xmax>8</xmax><ymax>9</ymax></bndbox></object></annotation>)");
  for (const auto& [file, words] :
       std::vector<std::pair<std::string, std::string>>{{"broken.xml", "not valid XML"},
                                                        {"outside.xml", "outside the 100x100 image"},
                                                        {"nan.xml", "not a number"},
                                                        {"nan2.xml", "not a number"}}) {
    try {
      parse_voc(d / file);
      ADD_FAILURE() << file << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
    }
  }
}

TEST(Voc, HalvesFollowTheSortedAnnotationOrderAndNameImages) {
  TempDir d;
  // c.xml names its image by a different file name; b.xml's image is a .jpg found by its stem;
  // d.xml has no image at all (left out of either half); e.xml names a file outside images/,
  // which is not read.
  write_bytes(d / "outside.png", "x");
  for (const auto& [xml, file] : std::vector<std::pair<std::string, std::string>>{
           {"c.xml", "photo-c.png"}, {"a.xml", "a.png"}, {"b.xml", "missing.png"}, {"d.xml", "gone.png"},
           {"e.xml", "../outside.png"}})
    write_bytes(d / "annotations" / xml, "<annotation><filename>" + file +
                                             "</filename><size><width>10</width><height>10</height></size></annotation>");
  for (const char* image : {"a.png", "b.jpg", "photo-c.png"}) write_bytes(d / "images" / image, "x");
  EXPECT_EQ(voc_scenes_of_parity(d.path, 0), (std::set<std::string>{"a.png", "photo-c.png"}));
  EXPECT_EQ(voc_scenes_of_parity(d.path, 1), (std::set<std::string>{"b.jpg"}));
}

namespace {

// Pastes a real-masks crop (a square of 1.5x its face box) at `at`, `side` px wide, and
// returns the face box inside it (the central 1/1.5).
cv::Rect2f paste(cv::Mat& scene, const fs::path& crop, cv::Point at, int side) {
  cv::Mat face = load_image_or_throw(crop), sized;
  cv::resize(face, sized, cv::Size(side, side), 0, 0, cv::INTER_AREA);
  sized.copyTo(scene(cv::Rect(at.x, at.y, side, side)));
  const float inner = side / 1.5f, off = (side - inner) / 2;
  return {at.x + off, at.y + off, inner, inner};
}

std::string object_xml(const std::string& name, const cv::Rect2f& b) {
  return fmt::format(
      "<object><name>{}</name><difficult>0</difficult><bndbox><xmin>{:.0f}</xmin><ymin>{:.0f}</ymin>"
      "<xmax>{:.0f}</xmax><ymax>{:.0f}</ymax></bndbox></object>",
      name, b.x, b.y, b.x + b.width, b.y + b.height);
}

}  // namespace

TEST(SceneEvalCli, PastedRealFacesGiveTheHandComputedAp) {
  TempDir d;
  const auto real = shared_path("data/real-masks"),
             incorrect = shared_path("data/real-masks-incorrect/mask_worn_incorrectly");
  cv::Mat scene(480, 1280, CV_8UC3, cv::Scalar(120, 125, 130));
  std::string objects;
  objects += object_xml(
      "with_mask",
      paste(scene, real / "with_mask/jolignier__JPEGImages_02ce9b3ce3309179fc223d36cee7db75_1.jpg", {20, 40}, 180));
  objects += object_xml(
      "with_mask",
      paste(scene, real / "with_mask/jolignier__JPEGImages_03b48d16cc1fb2cc6fb168bc5aff09f5_1.jpg", {230, 40}, 180));
  objects += object_xml(
      "without_mask",
      paste(scene, real / "without_mask/jolignier__JPEGImages_00b1add2cd030d9806be0f4e79464f9a_0.jpg", {440, 40}, 180));
  objects += object_xml(
      "without_mask",
      paste(scene, real / "without_mask/jolignier__JPEGImages_00f9e472f8603b8ed0d88532f0e5aad5_0.jpg", {650, 40}, 180));
  // Ignored: a mask under the nose (class not evaluated) and a face under 32 px.
  objects += object_xml(
      "mask_weared_incorrect",
      paste(scene, incorrect / "jolignier__JPEGImages_0258d0b34e25847b932350066dfc5671_0.jpg", {860, 40}, 180));
  objects += object_xml("without_mask",
                        paste(scene, real / "without_mask/jolignier__JPEGImages_00b1add2cd030d9806be0f4e79464f9a_1.jpg",
                              {1100, 300}, 36));
  // Missed: a labelled box over plain background (no face for the detector to find).
  objects += object_xml("with_mask", cv::Rect2f(100, 300, 100, 100));
  fs::create_directories(d / "images");
  ASSERT_TRUE(cv::imwrite((d / "images/scene.png").string(), scene));
  write_bytes(d / "annotations/scene.xml",
              "<annotation><filename>scene.png</filename><size><width>1280</width><height>480</height></size>" +
                  objects + "</annotation>");
  const auto r = run_cli(
      {"eval", "--scenes", d.path.string(), "--json", (d / "scenes.json").string(), "--out", (d / "plots").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = read_json(d / "scenes.json");
  // with_mask: 3 positives, the two real ones found first -> recall 2/3 at precision 1.
  EXPECT_EQ(j["per_class"]["with_mask"]["positives"], 3);
  EXPECT_NEAR(j["per_class"]["with_mask"]["ap"].get<double>(), 2.0 / 3, 1e-9);
  EXPECT_NEAR(j["per_class"]["without_mask"]["ap"].get<double>(), 1.0, 1e-9);
  EXPECT_NEAR(j["map"].get<double>(), (2.0 / 3 + 1.0) / 2, 1e-9);
  // Faces: 5 counted boxes, 4 found.
  EXPECT_EQ(j["face_positives"], 5);
  EXPECT_NEAR(j["face_ap"].get<double>(), 0.8, 1e-9);
  const auto& op = j["per_class"]["with_mask"]["operating_point"];
  EXPECT_EQ(op["tp"], 2);
  EXPECT_EQ(op["fp"], 0);
  EXPECT_TRUE(fs::exists(d / "plots/pr_curves.png"));
  // The box over plain background is the one missed face, on its contact sheet.
  EXPECT_EQ(j["missed_faces"], 1);
  EXPECT_TRUE(fs::exists(d / "plots/missed_faces.png"));
  EXPECT_GE(j["per_class_score_map"].get<double>(), j["map"].get<double>() - 1e-12);

  // The even half (the only scene is number 0) reported on its own; the odd half is empty.
  const auto even = run_cli({"eval", "--scenes", d.path.string(), "--half", "even", "--json", (d / "even.json").string()});
  ASSERT_EQ(even.exit_code, 0) << even.err;
  EXPECT_NEAR(read_json(d / "even.json")["subset"]["face_ap"].get<double>(), 0.8, 1e-9);
  const auto odd = run_cli({"eval", "--scenes", d.path.string(), "--half", "odd"});
  EXPECT_EQ(odd.exit_code, 1);
  EXPECT_NE(odd.err.find("no scenes"), std::string::npos) << odd.err;

  // Scenes with masked faces only: mAP is the with_mask AP (a class without labelled faces has
  // no AP and does not count as 0), and a rerun that misses nothing leaves no stale sheet.
  TempDir m;
  cv::Mat masked(480, 640, CV_8UC3, cv::Scalar(120, 125, 130));
  std::string masked_objects =
      object_xml("with_mask", paste(masked, real / "with_mask/jolignier__JPEGImages_02ce9b3ce3309179fc223d36cee7db75_1.jpg",
                                    {20, 40}, 180)) +
      object_xml("with_mask", paste(masked, real / "with_mask/jolignier__JPEGImages_03b48d16cc1fb2cc6fb168bc5aff09f5_1.jpg",
                                    {230, 40}, 180));
  fs::create_directories(m / "images");
  ASSERT_TRUE(cv::imwrite((m / "images/masked.png").string(), masked));
  const auto annotate = [&](const std::string& objects) {
    write_bytes(m / "annotations/masked.xml",
                "<annotation><filename>masked.png</filename><size><width>640</width><height>480</height></size>" +
                    objects + "</annotation>");
  };
  annotate(masked_objects + object_xml("with_mask", cv::Rect2f(100, 300, 100, 100)));
  const auto one = run_cli({"eval", "--scenes", m.path.string(), "--json", (m / "one.json").string(), "--out",
                            (m / "plots").string()});
  ASSERT_EQ(one.exit_code, 0) << one.err;
  const auto jm = read_json(m / "one.json");
  EXPECT_EQ(jm["per_class"]["without_mask"]["positives"], 0);
  EXPECT_EQ(jm["map_classes"], 1);
  EXPECT_NEAR(jm["map"].get<double>(), 2.0 / 3, 1e-9);
  EXPECT_NEAR(jm["map"].get<double>(), jm["per_class"]["with_mask"]["ap"].get<double>(), 1e-12);
  EXPECT_NE(one.out.find("left out of mAP"), std::string::npos) << one.out;
  EXPECT_TRUE(fs::exists(m / "plots/missed_faces.png"));
  annotate(masked_objects);
  const auto all_found = run_cli({"eval", "--scenes", m.path.string(), "--out", (m / "plots").string()});
  ASSERT_EQ(all_found.exit_code, 0) << all_found.err;
  EXPECT_FALSE(fs::exists(m / "plots/missed_faces.png")) << "an earlier run's sheet was left as if it were this one's";
  EXPECT_NE(all_found.out.find("no missed_faces.png"), std::string::npos) << all_found.out;
  // A scene cut short (its lower rows decode grey) is scored, with a warning that says so.
  std::vector<uchar> jpeg;
  ASSERT_TRUE(cv::imencode(".jpg", masked, jpeg));
  fs::remove(m / "images/masked.png");
  write_bytes(m / "images/masked.jpg", std::string(jpeg.begin(), jpeg.begin() + static_cast<long>(jpeg.size() / 2)));
  write_bytes(m / "annotations/masked.xml",
              "<annotation><filename>masked.jpg</filename><size><width>640</width><height>480</height></size>" +
                  masked_objects + "</annotation>");
  const auto cut = run_cli({"eval", "--scenes", m.path.string()});
  ASSERT_EQ(cut.exit_code, 0) << cut.err;
  EXPECT_NE(cut.err.find("masked.jpg: truncated JPEG (missing rows decode as grey) (scored as it decodes)"),
            std::string::npos)
      << cut.err;

  // Bad input: a malformed annotation is named, not skipped.
  write_bytes(d / "annotations/zz-broken.xml", "<annotation><size>");
  const auto bad = run_cli({"eval", "--scenes", d.path.string()});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("zz-broken.xml"), std::string::npos) << bad.err;
  const auto none = run_cli({"eval", "--scenes", (d / "nothing").string()});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.err.find("annotations/"), std::string::npos) << none.err;
}
