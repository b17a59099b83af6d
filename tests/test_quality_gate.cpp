// The quality gate (model/face_quality.h, eval/gate_fit.h): what it measures on a face, the
// smoothing of grainy faces, the risk-coverage arithmetic by hand, a fit on data whose right
// answers are known, and the whole path on real crops: fitted by `eval --fit-gate`, written
// into model.json, used by the classifier and shown as uncertain by `detect`.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <opencv2/imgproc.hpp>

#include "eval/condition_eval.h"
#include "eval/conditions.h"
#include "eval/gate_fit.h"
#include "media/image_io.h"
#include "model/face_quality.h"
#include "support.h"
#include "util/error.h"
#include "util/json_io.h"
#include "util/paths.h"
#include "vision/mask_classifier.h"

using namespace maskwatch;
using namespace maskwatch::test;
using json = nlohmann::json;

namespace {


// `n` real crops per class, spread over the folder (several sources).
std::vector<std::pair<fs::path, int>> real_files(size_t n) {
  std::vector<std::pair<fs::path, int>> out;
  int label = 0;
  for (const std::string cls : {"with_mask", "without_mask"}) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(shared_path("data/real-masks") / cls)) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (size_t i = 0; i < n; ++i) out.emplace_back(files[i * files.size() / n], label);
    ++label;
  }
  return out;
}

}  // namespace

TEST(FaceQuality, MeasuresLightContrastClippingAndNoiseOnTheFace) {
  const auto flat = measure_face_quality(cv::Mat(160, 160, CV_8UC3, cv::Scalar::all(128)));
  EXPECT_NEAR(flat.luma, 128 / 255.0, 1e-6);
  EXPECT_NEAR(flat.contrast, -4, 1e-6);  // log10(0 + 1e-4)
  EXPECT_NEAR(flat.noise, -3, 0.02);     // log10(0 + 1e-3), give or take half a histogram bin
  EXPECT_DOUBLE_EQ(flat.clipped, 0);
  const auto black = measure_face_quality(cv::Mat(160, 160, CV_8UC3, cv::Scalar::all(0)));
  EXPECT_DOUBLE_EQ(black.luma, 0);
  EXPECT_DOUBLE_EQ(black.clipped, 1);
  // Only the centre two thirds count: a white frame around a grey face does not.
  cv::Mat framed(150, 150, CV_8UC3, cv::Scalar::all(255));
  framed(cv::Rect(25, 25, 100, 100)).setTo(cv::Scalar::all(100));
  EXPECT_NEAR(measure_face_quality(framed).luma, 100 / 255.0, 1e-6);
  EXPECT_DOUBLE_EQ(measure_face_quality(framed).clipped, 0);

  // A real face: clean under the noisy line, grainy renders over it, dark ones darker.
  const cv::Mat face = real_face_crop();
  const auto clean = measure_face_quality(face);
  EXPECT_LT(clean.noise, kNoisyFace);
  for (const std::string name : {"noise", "dim webcam"}) {
    const auto q = measure_face_quality(find_condition(name).render(face, 7));
    EXPECT_GT(q.noise, kNoisyFace) << name;
    EXPECT_GT(q.sharpness, clean.sharpness) << name;  // grain is fine detail
  }
  const auto dark = measure_face_quality(find_condition("exposure -2 EV").render(face, 7));
  EXPECT_LT(dark.luma, clean.luma * 0.7);
  EXPECT_LT(dark.noise, kNoisyFace);
  const auto soft = measure_face_quality(find_condition("blur 2").render(face, 7));
  EXPECT_LT(soft.sharpness, clean.sharpness - 0.5);
  EXPECT_THROW(measure_face_quality(cv::Mat()), Error);
  EXPECT_THROW(measure_face_quality(cv::Mat(10, 10, CV_8UC1, cv::Scalar(0))), Error);
}

TEST(FaceQuality, SmoothsOnlyGrainyFacesAndNeverTheCallersPixels) {
  const cv::Mat face = real_face_crop();
  const cv::Mat same = smoothed_if_noisy(face, measure_face_quality(face));
  EXPECT_EQ(same.data, face.data);  // clean: untouched, not even copied
  const cv::Mat grainy = find_condition("dim webcam").render(face, 3);
  const cv::Mat before = grainy.clone();
  const cv::Mat smoothed = smoothed_if_noisy(grainy, measure_face_quality(grainy));
  EXPECT_NE(smoothed.data, grainy.data);
  EXPECT_EQ(cv::norm(grainy, before, cv::NORM_INF), 0);
  EXPECT_LT(measure_face_quality(smoothed).noise, measure_face_quality(grainy).noise - 0.2);
  EXPECT_EQ(smoothed.size(), grainy.size());
}

TEST(FaceQuality, MarginIsTheLogRatioOfTheTwoBestClasses) {
  EXPECT_NEAR(class_margin({0.9f, 0.1f}), std::log(9.0), 1e-6);
  EXPECT_NEAR(class_margin({0.2f, 0.5f, 0.3f}), std::log(5.0 / 3.0), 1e-6);
  EXPECT_DOUBLE_EQ(class_margin({1.0f, 0.0f}), 12);  // clamped
  EXPECT_DOUBLE_EQ(class_margin({0.5f, 0.5f}), 0);
}

TEST(QualityGate, RoundTripsThroughJsonAndRefusesMalformedGates) {
  QualityGate g;
  g.mean = {1, 2, 3, 4, 5, 6};
  g.scale = {1, 1, 1, 1, 1, 2};
  g.weights = {1, 0, 0, 0, -1, 0};
  g.bias = 0.5;
  g.threshold = 0.8;
  const std::vector<double> x = {3, 0, 0, 0, 4, 6};
  // sigmoid(0.5 + 1 * (3 - 1) - 1 * (4 - 5)) = sigmoid(3.5)
  EXPECT_NEAR(g.p_right(x), 1 / (1 + std::exp(-3.5)), 1e-12);
  EXPECT_TRUE(g.answers(0.8));
  EXPECT_FALSE(g.answers(0.79));
  const auto back = QualityGate::from_json(g.to_json(), "t", 2);
  EXPECT_NEAR(back.p_right(x), g.p_right(x), 1e-12);
  EXPECT_DOUBLE_EQ(back.threshold, 0.8);
  EXPECT_TRUE(QualityGate().answers(0));  // no gate: everything is answered
  EXPECT_DOUBLE_EQ(QualityGate().p_right(x), 1);

  auto broken = [&](const std::function<void(nlohmann::json&)>& edit, const std::string& says) {
    nlohmann::json j = g.to_json();
    edit(j);
    try {
      QualityGate::from_json(j, "m.json", 3);
      ADD_FAILURE() << "accepted: " << says;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("m.json"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
    }
  };
  broken([](auto& j) { j["inputs"][0] = "size"; }, "inputs are not");
  broken([](auto& j) { j["weights"].erase(0); }, "need 6 numbers");
  broken([](auto& j) { j["scale"][2] = 0; }, "scale <= 0");
  broken([](auto& j) { j["threshold"] = 1.5; }, "threshold");
  broken([](auto& j) { j.erase("bias"); }, "bias");
  // Judged classes: every model class onto one of at least two judged classes, each of them used.
  broken([](auto& j) { j["judges"] = {{"classes", {"with_mask", "without_mask"}}, {"of_model", {1, 0}}}; },
         "model's 3 classes");
  broken([](auto& j) { j["judges"] = {{"classes", {"with_mask", "without_mask"}}, {"of_model", {1, 1, 1}}}; },
         "every one of at least two");
  broken([](auto& j) { j["judges"] = {{"classes", {"with_mask", "without_mask"}}, {"of_model", {1, 0, 2}}}; },
         "names class 2 of 2");
}

// A three-class model's gate judges a mask worn or not: the classifier sums the chin-mask and
// bare-face probabilities before the margin is taken, as `eval --fit-gate --map` fitted it.
TEST(QualityGate, AGateOfFoldedClassesJudgesTheFoldedAnswer) {
  QualityGate g;
  g.mean = {0, 0, 0, 0, 0, 0};
  g.scale = {1, 1, 1, 1, 1, 1};
  g.weights = {1, 0, 0, 0, 0, 0};  // the margin alone
  g.bias = -2;
  g.threshold = 0.5;
  const FaceQuality q;
  // mask_worn_incorrectly 0.5, with_mask 0.1, without_mask 0.4: the model's own margin is
  // ln(0.5 / 0.4); not masked, 0.9 against 0.1, is a margin of ln 9.
  const std::vector<float> chin{0.5f, 0.1f, 0.4f};
  const auto sigmoid = [](double z) { return 1 / (1 + std::exp(-z)); };
  EXPECT_NEAR(g.p_right(q, chin), sigmoid(std::log(0.5 / 0.4) - 2), 1e-6);
  g.judged_classes = {"with_mask", "without_mask"};
  g.judged_of_model = {1, 0, 1};
  EXPECT_NEAR(g.p_right(q, chin), sigmoid(std::log(9.0) - 2), 1e-6);
  EXPECT_TRUE(g.answers(g.p_right(q, chin)));
  const auto back = QualityGate::from_json(g.to_json(), "m.json", 3);
  EXPECT_EQ(back.judged_of_model, (std::vector<int>{1, 0, 1}));
  EXPECT_EQ(back.judged_classes, g.judged_classes);
  EXPECT_NEAR(back.p_right(q, chin), g.p_right(q, chin), 1e-12);
  // A model.json whose gate judges another number of classes than the model has is refused.
  EXPECT_THROW(QualityGate::from_json(g.to_json(), "m.json", 2), Error);
}

TEST(GateFit, AnsweredScoresAndTheRiskCoverageCurveByHand) {
  const std::vector<double> p = {0.9, 0.8, 0.7, 0.6};
  const std::vector<int> truth = {0, 0, 1, 1}, predicted = {0, 1, 1, 0};
  const auto s = score_answered(p, truth, predicted, 2, 0.65);
  EXPECT_EQ(s.n, 4u);
  EXPECT_EQ(s.answered, 3u);
  EXPECT_DOUBLE_EQ(s.coverage, 0.75);
  EXPECT_DOUBLE_EQ(s.recall[0], 0.5);  // answered: 0.9 right, 0.8 wrong
  EXPECT_DOUBLE_EQ(s.recall[1], 1.0);  // answered: 0.7 right
  EXPECT_DOUBLE_EQ(s.balanced, 0.75);
  EXPECT_DOUBLE_EQ(s.coverage_of[1], 0.5);
  const auto curve = risk_coverage(p, truth, predicted, 2);
  ASSERT_EQ(curve.size(), 4u);
  // A class with faces but none answered counts as recall 0: the first two points answer
  // with_mask faces only.
  const double want_balanced[] = {0.5, 0.25, 0.75, 0.5}, want_coverage[] = {0.25, 0.5, 0.75, 1.0};
  for (size_t k = 0; k < 4; ++k) {
    EXPECT_DOUBLE_EQ(curve[k].threshold, p[k]);
    EXPECT_DOUBLE_EQ(curve[k].coverage, want_coverage[k]);
    EXPECT_DOUBLE_EQ(curve[k].balanced, want_balanced[k]) << k;
  }
  EXPECT_GT(threshold_for(curve, 0.99), 0.999);     // none reaches it: answer nothing
  EXPECT_DOUBLE_EQ(threshold_for(curve, 0.7), 0.7);  // the largest coverage that reaches it
  EXPECT_DOUBLE_EQ(score_answered(p, truth, predicted, 2, 0.85).balanced, 0.5);  // with_mask only
  EXPECT_THROW(score_answered({0.5}, {2}, {0}, 2, 0), Error);
  EXPECT_DOUBLE_EQ(threshold_for(curve, 0.5), 0);    // every face reaches it
  // Ties enter together.
  EXPECT_EQ(risk_coverage({0.5, 0.5, 0.4}, {0, 1, 0}, {0, 1, 1}, 2).size(), 2u);
  // Nothing reaches the target: no face is answered.
  EXPECT_GT(threshold_for(risk_coverage({0.9}, {0}, {1}, 2), 0.99), 0.999);
}

TEST(GateFit, LearnsThatAGrainyFaceNeedsAWiderMargin) {
  // Right when the margin beats 2 on a clean face and 5 on a grainy one ("dim webcam").
  std::vector<GateSample> samples;
  for (int cond = 0; cond < 2; ++cond)
    for (int k = 0; k < 400; ++k) {
      const double margin = 8.0 * k / 399, noise = cond ? -1.5 : -2.8;
      GateSample s;
      s.inputs = {margin, cond ? 0.25 : 0.5, -0.8, -1.5, noise + 0.01 * (k % 7), 0.0};
      s.truth = k % 2;
      s.predicted = margin > (cond ? 5 : 2) ? s.truth : 1 - s.truth;
      s.condition = static_cast<size_t>(cond);
      samples.push_back(s);
    }
  const QualityGate g = fit_quality_gate(samples, {"clean", "dim webcam"}, 2);
  ASSERT_TRUE(g.enabled());
  EXPECT_GT(g.weights[0], 0);  // a wider margin: more likely right
  const std::vector<double> clean4 = {4, 0.5, -0.8, -1.5, -2.8, 0}, grainy4 = {4, 0.25, -0.8, -1.5, -1.5, 0};
  EXPECT_GT(g.p_right(clean4), g.p_right(grainy4) + 0.2);
  // The threshold is set where the grainy faces answered are right >= 99 % of the time.
  std::vector<double> p;
  std::vector<int> truth, predicted;
  for (const auto& s : samples)
    if (s.condition == 1) p.push_back(g.p_right(s.inputs)), truth.push_back(s.truth), predicted.push_back(s.predicted);
  const auto dim = score_answered(p, truth, predicted, 2, g.threshold);
  EXPECT_GE(dim.balanced, 0.99);
  EXPECT_GT(dim.coverage, 0.3);  // 37.5 % of them are right; most of those are answered
  EXPECT_LT(dim.coverage, 0.45);
  EXPECT_EQ(g.fit["threshold_condition"], "dim webcam");

  for (auto& s : samples) s.predicted = s.truth;
  EXPECT_THROW(fit_quality_gate(samples, {"clean", "dim webcam"}, 2), Error);  // nothing to learn
  samples[0].predicted = 1 - samples[0].truth;
  EXPECT_THROW(fit_quality_gate(samples, {"clean", "noise"}, 2), Error);  // no dim webcam to set it on
}

TEST(GateCli, FitGateWritesModelJsonAndDetectShowsUnjudgedFacesAsUncertain) {
  constexpr size_t kFitPerClass = 40;  // enough real crops that some dim webcam renders defeat the model
  TempDir d;
  // A copy of the shipped model (never write into the real one) and a split of real crops.
  fs::create_directories(d / "m");
  fs::copy_file(default_model_path(), d / "m/model.onnx");
  json meta = read_json(sidecar_path(default_model_path()));
  meta.erase("quality_gate");
  write_json_atomic(d / "m/model.json", meta);
  json items = json::array();
  for (const auto& [file, label] : real_files(kFitPerClass)) {
    const std::string cls = label ? "without_mask" : "with_mask";
    fs::create_directories(d / "small" / cls);
    fs::copy_file(file, d / "small" / cls / file.filename());
    items.push_back({{"image", "small/" + cls + "/" + file.filename().string()}, {"split", "val"}});
  }
  write_json_atomic(d / "split.json", {{"items", items}});
  const std::string model = (d / "m/model.onnx").string(), data = (d / "small").string();

  // Fitting needs the validation subset: a test split would make its own scores optimistic.
  const auto no_split = run_cli({"eval", "--conditions", "--fit-gate", "--model", model, "--data", data});
  EXPECT_EQ(no_split.exit_code, 1);
  EXPECT_NE(no_split.err.find("--subset val"), std::string::npos) << no_split.err;
  EXPECT_FALSE(read_json(d / "m/model.json").contains("quality_gate"));
  // Another run's split (its data manifest is not the model's): its "val" may be our training.
  json foreign = {{"items", items}, {"manifest_sha256", std::string(64, 'a')}};
  write_json_atomic(d / "foreign.json", foreign);
  const auto other = run_cli({"eval", "--conditions", "--fit-gate", "--model", model, "--data", data, "--split",
                              (d / "foreign.json").string(), "--subset", "val"});
  EXPECT_EQ(other.exit_code, 1);
  EXPECT_NE(other.err.find("another run"), std::string::npos) << other.err;
  EXPECT_FALSE(read_json(d / "m/model.json").contains("quality_gate"));

  const auto fit = run_cli({"eval", "--conditions", "--fit-gate", "--model", model, "--data", data, "--split",
                            (d / "split.json").string(), "--subset", "val", "--json", (d / "fit.json").string(),
                            "--out", (d / "plots").string()});
  ASSERT_EQ(fit.exit_code, 0) << fit.err;
  EXPECT_NE(fit.out.find(fmt::format("quality gate fitted on {} crops", 2 * kFitPerClass)), std::string::npos) << fit.out;
  const json written = read_json(d / "m/model.json");
  ASSERT_TRUE(written.contains("quality_gate"));
  EXPECT_EQ(written["onnx_sha256"], meta["onnx_sha256"]);  // the rest as it was
  EXPECT_EQ(written["training"], meta["training"]);
  EXPECT_TRUE(fs::exists(d / "plots/risk_coverage.png"));
  const json report = read_json(d / "fit.json");
  ASSERT_TRUE(report["gated"].get<bool>());
  const auto& conditions = report["conditions"];
  const json& clean = conditions.front();
  const json& dim = conditions.back();
  ASSERT_EQ(dim["name"], "dim webcam");
  // The gate answers fewer grainy faces than clean ones, and those it answers are right at
  // least as often as all faces are.
  EXPECT_LT(dim["answered"]["coverage"].get<double>(), clean["answered"]["coverage"].get<double>());
  for (const auto& c : conditions)
    EXPECT_GE(c["answered"]["balanced_accuracy"].get<double>() + 1e-12, c["balanced_accuracy"].get<double>())
        << c["name"];
  EXPECT_GE(dim["answered"]["balanced_accuracy"].get<double>(), 0.99);

  // The classifier reads the gate: every crop gets its P(right), and a dark grainy render of
  // a face it cannot judge comes back unanswered.
  MaskClassifier clf(model);
  ASSERT_TRUE(clf.quality_gate().enabled());
  std::vector<cv::Mat> grainy;
  for (const auto& [file, label] : real_files(20))
    grainy.push_back(find_condition("dim webcam").render(load_image_or_throw(file), 11));
  size_t unanswered = 0;
  for (const auto& p : clf.classify(grainy)) {
    EXPECT_EQ(p.answered, p.p_right >= clf.quality_gate().threshold);
    unanswered += !p.answered;
  }
  EXPECT_GT(unanswered, 0u);

  // `detect`: a face the gate does not answer is labelled uncertain, with its P(right).
  QualityGate strict = clf.quality_gate();
  strict.threshold = 0.999999;
  json strict_meta = written;
  strict_meta["quality_gate"] = strict.to_json();
  write_json_atomic(d / "m/model.json", strict_meta);
  const auto still = run_cli({"detect", "--model", model, real_files(1)[0].first.string(), "--json",
                              (d / "detect.json").string()});
  ASSERT_EQ(still.exit_code, 0) << still.err;
  const json faces = read_json(d / "detect.json")[0]["faces"];
  ASSERT_GE(faces.size(), 1u);
  EXPECT_EQ(faces[0]["label"], "uncertain");
  EXPECT_LT(faces[0]["p_right"].get<double>(), 0.999999);
  EXPECT_NE(still.out.find("uncertain (cannot judge this face"), std::string::npos) << still.out;

  // "quality_gate": null turns the gate off: every face answered again.
  strict_meta["quality_gate"] = nullptr;
  write_json_atomic(d / "m/model.json", strict_meta);
  EXPECT_FALSE(MaskClassifier(model).quality_gate().enabled());
}
