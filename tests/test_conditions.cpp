// Camera conditions for `eval --conditions`: each rendering against values computed by hand
// (sRGB arithmetic, noise statistics, lost frequencies), and the command end to end on real
// crops, where `clean` must agree with the plain `eval`.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>
#include <set>

#include "eval/class_fold.h"
#include "eval/condition_eval.h"
#include "eval/conditions.h"
#include "media/image_io.h"
#include "support.h"
#include "util/error.h"
#include "util/json_io.h"
#include "vision/mask_classifier.h"

using namespace maskwatch;
using namespace maskwatch::test;

namespace {

cv::Mat grey(int value, int w = 160, int h = 160) { return cv::Mat(h, w, CV_8UC3, cv::Scalar::all(value)); }

cv::Mat render(const std::string& name, const cv::Mat& img, uint64_t seed = 7) {
  return find_condition(name).render(img, seed);
}

bool same(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && a.type() == b.type() && cv::norm(a, b, cv::NORM_INF) == 0;
}

// Mean squared difference between an image and its own Gaussian blur (sigma 2): the energy of
// detail finer than a few pixels.
double fine_energy(const cv::Mat& bgr) {
  cv::Mat f, smooth;
  bgr.convertTo(f, CV_32F);
  cv::GaussianBlur(f, smooth, cv::Size(0, 0), 2);
  const cv::Scalar e = cv::mean((f - smooth).mul(f - smooth));
  return (e[0] + e[1] + e[2]) / 3;
}

}  // namespace

TEST(Conditions, ExposureIsInLinearLightWithHandComputedValues) {
  // sRGB 128 decodes to ((128/255 + 0.055) / 1.055)^2.4 = 0.21586; x 0.5 = 0.10793 encodes to
  // 1.055 x 0.10793^(1/2.4) - 0.055 = 0.36225 -> 92.37 -> 92 (an 8-bit halving would give 64).
  EXPECT_EQ(render("exposure -1 EV", grey(128)).at<cv::Vec3b>(80, 80), cv::Vec3b(92, 92, 92));
  EXPECT_EQ(render("exposure -2 EV", grey(128)).at<cv::Vec3b>(0, 0), cv::Vec3b(66, 66, 66));     // 65.68
  EXPECT_EQ(render("exposure -3 EV", grey(128)).at<cv::Vec3b>(5, 9), cv::Vec3b(46, 46, 46));     // 45.69
  EXPECT_EQ(render("exposure -1 EV", grey(200)).at<cv::Vec3b>(1, 1), cv::Vec3b(146, 146, 146));  // 146.31
  EXPECT_EQ(render("exposure -3 EV", grey(200)).at<cv::Vec3b>(1, 1), cv::Vec3b(76, 76, 76));     // 75.96
  EXPECT_TRUE(same(render("exposure -2 EV", grey(0)), grey(0)));
  // The transfer curve round-trips every 8-bit level exactly.
  cv::Mat ramp(1, 256, CV_8UC3);
  for (int v = 0; v < 256; ++v) ramp.at<cv::Vec3b>(0, v) = cv::Vec3b(v, 255 - v, v / 2);
  EXPECT_TRUE(same(linear_to_srgb8(srgb8_to_linear(ramp)), ramp));
}

TEST(Conditions, NoiseIsSeededAndHasSigma004InLinearLight) {
  const cv::Mat img = grey(128, 320, 240);
  const cv::Mat a = render("noise", img, 11), b = render("noise", img, 11), c = render("noise", img, 12);
  EXPECT_TRUE(same(a, b));
  EXPECT_FALSE(same(a, c));
  cv::Mat diff = srgb8_to_linear(a) - srgb8_to_linear(img);
  cv::Scalar mean, std;
  cv::meanStdDev(diff.reshape(1), mean, std);
  // 230,400 draws: the standard error of the std is 6e-5; 8-bit quantization adds ~1e-3 in
  // quadrature at this level (0.04001).
  EXPECT_NEAR(std[0], 0.04, 0.001);
  EXPECT_NEAR(mean[0], 0.0, 0.001);
  // Channels draw independently: the noise is not grey.
  cv::Mat ch[3];
  cv::split(diff, ch);
  EXPECT_GT(cv::norm(ch[0], ch[2], cv::NORM_L1), 0);
}

TEST(Conditions, LowResolutionLosesFineDetailButKeepsCoarse) {
  cv::Mat board(160, 160, CV_8UC3);
  for (int y = 0; y < 160; ++y)
    for (int x = 0; x < 160; ++x) board.at<cv::Vec3b>(y, x) = cv::Vec3b::all(((x / 2 + y / 2) % 2) ? 255 : 0);
  const double before = fine_energy(board);
  ASSERT_GT(before, 5000);
  const cv::Mat low = render("low-res 24", board);
  EXPECT_LT(fine_energy(low), 0.01 * before);
  // The 2 px checks average to mid-grey.
  EXPECT_NEAR(cv::mean(low)[0], 127.5, 2);
  // A coarse pattern (40 px halves) survives 24 px: the mean of each half stays put.
  cv::Mat halves = grey(0);
  halves(cv::Rect(0, 0, 80, 160)).setTo(cv::Scalar::all(200));
  const cv::Mat coarse = render("low-res 24", halves);
  EXPECT_NEAR(cv::mean(coarse(cv::Rect(0, 0, 70, 160)))[0], 200, 2);
  EXPECT_NEAR(cv::mean(coarse(cv::Rect(90, 0, 70, 160)))[0], 0, 2);
  // Already smaller than the side: unchanged.
  EXPECT_TRUE(same(low_resolution(grey(90, 20, 30), 24), grey(90, 20, 30)));
}

TEST(Conditions, BlurSigmaIsInPixelsAt160AndScalesWithTheCrop) {
  // A 1 px vertical line: its horizontal profile after the blur has variance sigma^2.
  const auto measured_sigma = [](int size, const std::string& name) {
    cv::Mat line = grey(0, size, size);
    line.col(size / 2).setTo(cv::Scalar::all(255));
    const cv::Mat out = render(name, line);
    double w = 0, m2 = 0;
    for (int x = 0; x < size; ++x) {
      const double v = out.at<cv::Vec3b>(size / 2, x)[1];
      w += v;
      m2 += v * (x - size / 2) * (x - size / 2);
    }
    return std::sqrt(m2 / w);
  };
  EXPECT_NEAR(measured_sigma(160, "blur 1"), 1.0, 0.1);
  EXPECT_NEAR(measured_sigma(160, "blur 2"), 2.0, 0.1);
  EXPECT_NEAR(measured_sigma(320, "blur 2"), 4.0, 0.2);
}

TEST(Conditions, JpegChangesPixelsNotSize) {
  const cv::Mat crop = real_face_crop();
  const cv::Mat q20 = render("jpeg 20", crop), q40 = render("jpeg 40", crop);
  ASSERT_EQ(q20.size(), crop.size());
  ASSERT_EQ(q20.type(), CV_8UC3);
  const double err20 = cv::norm(q20, crop, cv::NORM_L1), err40 = cv::norm(q40, crop, cv::NORM_L1);
  EXPECT_GT(err20, 0);
  EXPECT_GT(err20, err40);  // lower quality, larger error
  // Still the same picture: a few grey levels off on average, not a different image.
  EXPECT_LT(err20 / (crop.total() * 3), 10);
}

TEST(Conditions, BacklightDarkensTheFaceAndBrightensTheRest) {
  const cv::Mat out = render("backlight", grey(128));
  EXPECT_EQ(out.at<cv::Vec3b>(80, 80), cv::Vec3b(66, 66, 66));    // centre: -2 EV (65.68)
  EXPECT_EQ(out.at<cv::Vec3b>(0, 0), cv::Vec3b(176, 176, 176));   // corner: +1 EV (175.56)
  EXPECT_EQ(out.at<cv::Vec3b>(80, 0), cv::Vec3b(176, 176, 176));  // beyond the ellipse's side
  // The darkened region is the centre ellipse of ~60 % of the crop (a little more with the
  // feathered edge counted while it is still darker than the original).
  cv::Mat darker;
  cv::extractChannel(out, darker, 0);
  const double share = cv::countNonZero(darker < 128) / 25600.0;
  EXPECT_GT(share, 0.58);
  EXPECT_LT(share, 0.66);
  // White stays clipped at white outside.
  EXPECT_EQ(render("backlight", grey(255)).at<cv::Vec3b>(0, 0), cv::Vec3b(255, 255, 255));
}

TEST(Conditions, ColourCastsAreLinearGainsPerChannel) {
  // Linear 0.21586 x 0.8 -> 115.39, x 1.2 -> 139.21 (B, G, R order).
  EXPECT_EQ(render("cast warm", grey(128)).at<cv::Vec3b>(3, 3), cv::Vec3b(115, 128, 139));
  const cv::Vec3b cool = render("cast cool", grey(128)).at<cv::Vec3b>(3, 3);
  EXPECT_GT(cool[0], 128);
  EXPECT_EQ(cool[1], 128);
  EXPECT_LT(cool[2], 128);
  const cv::Vec3b green = render("cast green", grey(128)).at<cv::Vec3b>(3, 3);
  EXPECT_GT(green[1], 128);
  EXPECT_LT(green[0], 128);
  EXPECT_EQ(green[0], green[2]);
}

TEST(Conditions, DimWebcamIsTheCompositionOfItsParts) {
  const cv::Mat crop = real_face_crop();
  cv::Mat linear = srgb8_to_linear(crop) * 0.25;
  add_linear_noise(linear, 0.04, 99);
  const cv::Mat parts = jpeg_round_trip(linear_to_srgb8(linear), 40);
  EXPECT_TRUE(same(render("dim webcam", crop, 99), parts));
  // Its noise is the `noise` condition's draw for the same seed: on black (where -2 EV
  // changes nothing) the two differ only by the JPEG step.
  const cv::Mat black = grey(0);
  cv::Mat noise_only = render("noise", black, 5);
  EXPECT_TRUE(same(render("dim webcam", black, 5), jpeg_round_trip(noise_only, 40)));
}

TEST(Conditions, EveryConditionKeepsSizeAndTypeAndIsDeterministic) {
  const auto& all = camera_conditions();
  ASSERT_EQ(all.size(), 17u);
  EXPECT_EQ(all.front().name, "clean");
  const cv::Mat crop = real_face_crop();
  cv::Mat odd;
  cv::resize(crop, odd, cv::Size(150, 97));  // not square, odd sizes
  for (const auto& c : all) {
    EXPECT_FALSE(c.description.empty()) << c.name;
    for (const cv::Mat& img : {crop, odd}) {
      const cv::Mat a = c.render(img, 3), b = c.render(img, 3);
      EXPECT_EQ(a.size(), img.size()) << c.name;
      EXPECT_EQ(a.type(), CV_8UC3) << c.name;
      EXPECT_TRUE(same(a, b)) << c.name;
      EXPECT_EQ(same(a, img), c.name == "clean") << c.name << ": only clean changes nothing";
    }
    // The input is left alone (clean returns a copy, not the same pixels).
    EXPECT_NE(c.render(crop, 3).data, crop.data) << c.name;
  }
  EXPECT_TRUE(same(render("clean", crop), crop));
}

TEST(Conditions, BadInputIsAnErrorNotACrash) {
  for (const auto& c : camera_conditions()) {
    EXPECT_THROW(c.render(cv::Mat(), 1), Error) << c.name;
    EXPECT_THROW(c.render(cv::Mat(8, 8, CV_8UC1, cv::Scalar(3)), 1), Error) << c.name;
    EXPECT_THROW(c.render(cv::Mat(8, 8, CV_32FC3, cv::Scalar::all(0.5)), 1), Error) << c.name;
  }
  try {
    find_condition("fog");
    ADD_FAILURE() << "an unknown condition was found";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("dim webcam"), std::string::npos) << e.what();
  }
}

TEST(Conditions, ConfidentlyWrongCountsSureErrorsAndThoseTheGateLetsThrough) {
  // Five faces: 0 right and sure; 1 wrong at 0.95 (gate says 0.97: answered); 2 wrong at 0.90
  // exactly (gate 0.40: not answered); 3 wrong at 0.89 (not sure enough); 4 wrong at 0.99
  // (answered). Most confident first.
  const std::vector<int> truth{0, 1, 0, 1, 0}, predicted{0, 0, 1, 0, 1};
  const std::vector<double> confidence{0.99, 0.95, 0.90, 0.89, 0.99}, p_right{0.99, 0.97, 0.40, 0.50, 0.96};
  const auto gated = confidently_wrong(truth, predicted, confidence, p_right, 0.9);
  EXPECT_EQ(gated.inputs, (std::vector<size_t>{4, 1, 2}));
  EXPECT_EQ(gated.answered, 2u);
  const auto ungated = confidently_wrong(truth, predicted, confidence, confidence, 0);
  EXPECT_EQ(ungated.answered, 3u);
  EXPECT_EQ(confidently_wrong(truth, predicted, confidence, p_right, 0.9, 0.96).inputs, (std::vector<size_t>{4}));
  EXPECT_THROW(confidently_wrong(truth, {0, 1}, confidence, p_right, 0.9), Error);
}

// `eval --map mask_worn_incorrectly=without_mask` on a three-class model: its chin masks are
// scored in the two-class protocol, by the label the overlay shows (the top class, folded).
// Before, every chin mask counted as wrong (4.9 % of them "right" where 86.9 % were).
TEST(Eval, AMapOfAModelClassFoldsItsPredictions) {
  const std::vector<std::string> three{"mask_worn_incorrectly", "with_mask", "without_mask"};
  const auto fold = ClassFold::make(three, {{"mask_worn_incorrectly", "without_mask"}});
  EXPECT_TRUE(fold.folds());
  EXPECT_EQ(fold.classes, (std::vector<std::string>{"with_mask", "without_mask"}));
  EXPECT_EQ(fold.of_model, (std::vector<int>{1, 0, 1}));
  const auto prediction = [](int label, std::vector<float> probs) {
    Prediction p;
    p.label = label;
    p.score = probs.at(static_cast<size_t>(label));
    p.probs = std::move(probs);
    return p;
  };
  auto chin = prediction(0, {0.5f, 0.3f, 0.2f});  // top class "below the nose": not masked, summed probability
  fold.apply(chin);
  EXPECT_EQ(chin.label, 1);
  EXPECT_NEAR(chin.score, 0.7f, 1e-6);
  EXPECT_EQ(chin.probs.size(), 2u);
  EXPECT_NEAR(chin.probs[0], 0.3f, 1e-6);
  auto masked = prediction(1, {0.35f, 0.4f, 0.25f});  // the top class decides, as on the overlay
  fold.apply(masked);
  EXPECT_EQ(masked.label, 0);
  EXPECT_NEAR(masked.score, 0.4f, 1e-6);
  // A map of data folders only, or of a class into itself, folds nothing.
  const auto two = ClassFold::make({"with_mask", "without_mask"}, {{"mask_worn_incorrectly", "without_mask"}});
  EXPECT_FALSE(two.folds());
  auto p = prediction(1, {0.1f, 0.9f});
  two.apply(p);
  EXPECT_EQ(p.label, 1);
  EXPECT_EQ(p.probs.size(), 2u);
  EXPECT_FALSE(ClassFold::make(three, {{"with_mask", "with_mask"}}).folds());
  // Folding into a name the model does not have, or into a class folded away itself: errors.
  EXPECT_THROW(ClassFold::make(three, {{"mask_worn_incorrectly", "no_mask"}}), Error);
  // What the consumers count: the mask class, and every other class as without_mask (or, without
  // one, as the first other class); two classes fold nothing.
  const auto compliance = compliance_fold(three, 1);
  EXPECT_EQ(compliance.classes, (std::vector<std::string>{"with_mask", "without_mask"}));
  EXPECT_EQ(compliance.of_model, (std::vector<int>{1, 0, 1}));
  EXPECT_FALSE(compliance_fold({"with_mask", "without_mask"}, 0).folds());
  const auto other_names = compliance_fold({"bare", "masked", "chin"}, 1);
  EXPECT_EQ(other_names.classes, (std::vector<std::string>{"bare", "masked"}));
  EXPECT_EQ(other_names.of_model, (std::vector<int>{0, 1, 0}));
  EXPECT_THROW(ClassFold::make(three, {{"mask_worn_incorrectly", "without_mask"}, {"without_mask", "with_mask"}}),
               Error);
}

TEST(Conditions, SamplesAreEvenlySpacedPerClassAndFillShortClasses) {
  std::vector<int> labels(10, 0);
  labels.insert(labels.end(), 3, 1);
  // Class 1 has only 3 items: class 0 takes the spare slot, at the centres of 5 slices.
  EXPECT_EQ(pick_samples(labels, 2), (std::vector<size_t>{1, 3, 5, 7, 9, 10, 11, 12}));
  // No item of class 0: class 1 fills all 2 x 2 slots.
  EXPECT_EQ(pick_samples(std::vector<int>(8, 1), 2, 2), (std::vector<size_t>{1, 3, 5, 7}));
  EXPECT_TRUE(pick_samples({}, 2).empty());
}

TEST(ConditionsCli, ReportsEveryConditionAndCleanMatchesPlainEval) {
  TempDir d;
  const auto real = shared_path("data/real-masks");
  for (const std::string cls : {"with_mask", "without_mask"}) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(real / cls)) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    fs::create_directories(d / "small" / cls);
    for (size_t i = 0; i < 6; ++i) fs::copy_file(files[i * 97], d / "small" / cls / files[i * 97].filename());
  }
  const auto data = (d / "small").string();
  const auto r = run_cli(
      {"eval", "--conditions", "--data", data, "--json", (d / "cond.json").string(), "--out", (d / "plots").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("dim webcam"), std::string::npos) << r.out;
  const auto j = read_json(d / "cond.json");
  const auto& all = camera_conditions();
  ASSERT_EQ(j["conditions"].size(), all.size());
  for (size_t k = 0; k < all.size(); ++k) {
    const auto& c = j["conditions"][k];
    EXPECT_EQ(c["name"], all[k].name);
    EXPECT_EQ(c["n"], 12) << all[k].name;
    EXPECT_EQ(c["recall"].size(), 2u);
    EXPECT_GE(c["balanced_accuracy"].get<double>(), 0.0);
  }
  EXPECT_EQ(j["samples"].size(), 8u);
  EXPECT_TRUE(fs::exists(d / "plots/conditions.png"));

  const auto plain = run_cli({"eval", "--data", data, "--json", (d / "plain.json").string()});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  const auto p = read_json(d / "plain.json");
  EXPECT_EQ(p["n"], 12);
  EXPECT_NEAR(j["conditions"][0]["balanced_accuracy"].get<double>(), p["balanced_accuracy"].get<double>(), 1e-12);
  // The clean condition's confidently wrong answers are plain eval's wrong predictions at
  // >= 90 %, image by image.
  std::set<std::string> sure_plain, sure_clean;
  for (const auto& x : p["predictions"])
    if (x["label"] != x["true"] && x["score"].get<double>() >= 0.9) sure_plain.insert(x["image"].get<std::string>());
  for (const auto& e : j["conditions"][0]["confidently_wrong"]["inputs"]) {
    EXPECT_GE(e["confidence"].get<double>(), 0.9);
    EXPECT_NE(e["true"], e["predicted"]);
    sure_clean.insert(fs::path(e["image"].get<std::string>()).filename().string());
  }
  std::set<std::string> plain_names;
  for (const auto& n : sure_plain) plain_names.insert(fs::path(n).filename().string());
  EXPECT_EQ(sure_clean, plain_names);
  EXPECT_EQ(p["confidently_wrong"]["count"].get<size_t>(), sure_plain.size());

  // --conditions and --scenes are two different evaluations.
  const auto both = run_cli({"eval", "--conditions", "--scenes", data});
  EXPECT_EQ(both.exit_code, 2);
  EXPECT_NE(both.err.find("excludes"), std::string::npos) << both.err;
}
