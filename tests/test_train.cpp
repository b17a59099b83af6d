// Short real trainings (48 images per class at 96-128 px, a couple of epochs per phase).
#include <gtest/gtest.h>

#include <algorithm>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "model/face_quality.h"
#include "support.h"
#include "train/batch_loader.h"
#include "train/trainer.h"
#include "util/error.h"
#include "util/files.h"
#include "util/json_io.h"
#include "util/paths.h"
#include "util/sha256.h"
#include "vision/mask_classifier.h"

using namespace maskwatch;
using namespace maskwatch::test;

namespace {

TrainOptions small_options(const fs::path& out) {
  TrainOptions o;
  o.data = {shared_path("data/seed-masks")};
  o.backbone = asset(kQuantBackbone);
  o.out = out;
  o.limit_per_class = 48;
  o.input_size = 96;
  o.epochs = 2;
  o.fine_tune_epochs = 2;
  o.batch = 16;
  o.threads = 1;  // ctest runs two tests at once on 2 cores; OpenMP spin-waits badly when oversubscribed
  return o;
}

std::string file_hash(const fs::path& p) { return sha256_hex(read_file_bytes(p)); }

}  // namespace

TEST(Train, ShortRunLearnsAndWritesEveryArtifact) {
  TempDir dir;
  auto o = small_options(dir / "run");
  o.input_size = 128;
  const auto r = train_mask_model(o);
  ASSERT_TRUE(r.completed);
  EXPECT_EQ(r.metrics.test.overall.n, read_json(o.out / "metrics.json")["test"]["n"].get<int>());
  for (const char* f : {"model.onnx", "model.json", "metrics.json", "curves.png", "confusion.png", "split.json",
                        "MODEL_CARD.md", "checkpoint.pt", "best.pt"})
    EXPECT_TRUE(fs::exists(o.out / f)) << f;
  const auto m = read_json(o.out / "metrics.json");
  const auto& epochs = m["epochs"];
  ASSERT_EQ(epochs.size(), 4u);
  EXPECT_LT(epochs[1]["train_loss"].get<double>(), epochs[0]["train_loss"].get<double>());  // it learns
  EXPECT_EQ(epochs[2]["phase"], 2);
  EXPECT_GE(m["test"]["accuracy"].get<double>(), 0.8);  // 14 test images, pasted masks: easy
  EXPECT_EQ(m["test"]["libtorch_agreement"]["same_label"], m["test"]["n"]);
  EXPECT_LE(m["test"]["libtorch_agreement"]["max_abs_prob_diff"].get<double>(), 1e-4);
  EXPECT_EQ(m["near_duplicates"]["leak"]["this_split"]["with_near_copy_in_train"], 0);

  // The exported model loads, and `maskwatch eval` on the test split reproduces the test metrics.
  MaskClassifier clf(o.out / "model.onnx");
  EXPECT_EQ(clf.classes(), (std::vector<std::string>{"with_mask", "without_mask"}));
  EXPECT_EQ(clf.input_size(), 128);
  const auto e = run_cli({"eval", "--model", (o.out / "model.onnx").string(), "--data", o.data[0].string(), "--split",
                          (o.out / "split.json").string(), "--json", (dir / "eval.json").string()});
  ASSERT_EQ(e.exit_code, 0) << e.err;
  const auto ev = read_json(dir / "eval.json");
  EXPECT_EQ(ev["n"], m["test"]["n"]);
  EXPECT_NEAR(ev["accuracy"].get<double>(), m["test"]["accuracy"].get<double>(), 1e-9);
  for (const char* field : {"balanced_accuracy", "per_class", "confusion", "predictions"})
    EXPECT_TRUE(ev.contains(field)) << field;
  EXPECT_TRUE(ev["per_class"]["with_mask"].contains("f1"));
  ASSERT_FALSE(ev["predictions"].empty());
  EXPECT_TRUE(ev["predictions"][0].contains("image") && ev["predictions"][0].contains("score"));
  // Every class's probability, in model order: the shown label's is its score, and they sum to 1.
  for (const auto& p : ev["predictions"]) {
    const auto probs = p["probs"].get<std::vector<double>>();
    ASSERT_EQ(probs.size(), 2u);
    EXPECT_NEAR(probs[0] + probs[1], 1.0, 1e-5);
    const size_t shown = p["label"] == "with_mask" ? 0 : 1;
    EXPECT_NEAR(probs[shown], p["score"].get<double>(), 1e-6);
  }
}

TEST(Train, AGateThatWouldAnswerNoFaceIsNotWritten) {
  // Two validation images: no threshold reaches 99 % under dim webcam. The gate written then
  // (threshold 0.999999999) made every face of every frame uncertain.
  TempDir dir;
  auto o = small_options(dir / "run");
  o.limit_per_class = 8;
  o.epochs = 1;
  o.fine_tune_epochs = 0;
  ASSERT_TRUE(train_mask_model(o).completed);
  const auto meta = read_json(o.out / "model.json");
  EXPECT_TRUE(!meta.contains("quality_gate") || meta["quality_gate"].is_null()) << meta["quality_gate"];
  EXPECT_TRUE(read_json(o.out / "metrics.json")["quality_gate"].contains("skipped"));
}

// A three-class model (chin masks their own class) is shown and counted as a mask worn or not,
// so its gate judges that: fitted by training on the folded answers, and asked by the classifier
// with the chin-mask and bare-face probabilities summed. `eval --fit-gate --map` fits the same.
TEST(Train, AThreeClassModelsGateJudgesAMaskWornOrNot) {
  TempDir dir;
  auto o = small_options(dir / "run");
  o.data.push_back(shared_path("data/real-masks-incorrect"));
  ASSERT_TRUE(train_mask_model(o).completed);
  const nlohmann::json judged = {{"classes", {"with_mask", "without_mask"}}, {"of_model", {1, 0, 1}}};
  nlohmann::json meta = read_json(o.out / "model.json");
  ASSERT_EQ(meta["classes"], nlohmann::json({"mask_worn_incorrectly", "with_mask", "without_mask"}));
  ASSERT_TRUE(meta.contains("quality_gate") && meta["quality_gate"].is_object()) << read_bytes(o.out / "metrics.json");
  EXPECT_EQ(meta["quality_gate"]["judges"], judged);
  const std::string card = read_bytes(o.out / "MODEL_CARD.md");
  EXPECT_NE(card.find("It judges the answer the consumers count (with_mask or without_mask)"), std::string::npos);

  // The classifier's P(right) takes the margin of with_mask against the other two together.
  MaskClassifier clf(o.out / "model.onnx");
  const auto& gate = clf.quality_gate();
  std::vector<cv::Mat> crops;
  for (const char* f : {"with_mask/0-with-mask.jpg", "without_mask/0.jpg"})
    crops.push_back(cv::imread(shared_path("data/seed-masks/" + std::string(f)).string()));
  std::vector<fs::path> chin;
  for (const auto& e : fs::directory_iterator(shared_path("data/real-masks-incorrect/mask_worn_incorrectly")))
    chin.push_back(e.path());
  std::sort(chin.begin(), chin.end());
  chin.resize(4);
  for (const auto& f : chin) crops.push_back(cv::imread(f.string()));
  for (const auto& p : clf.classify(crops)) {
    ASSERT_EQ(p.probs.size(), 3u);
    const std::vector<float> folded{p.probs[1], p.probs[0] + p.probs[2]};
    EXPECT_NEAR(p.p_right, gate.p_right(gate_inputs(p.quality, folded)), 1e-9);
    if (std::abs(class_margin(folded) - class_margin(p.probs)) > 0.1)  // where the fold matters, it shows
      EXPECT_GT(std::abs(p.p_right - gate.p_right(gate_inputs(p.quality, p.probs))), 1e-6);
  }

  // Fitted again from the command line on the run's validation crops, folded by --map.
  meta.erase("quality_gate");
  write_json_atomic(o.out / "model.json", meta);
  const auto fit = run_cli({"eval", "--conditions", "--fit-gate", "--model", (o.out / "model.onnx").string(), "--data",
                            o.data[0].string(), "--data", o.data[1].string(), "--map",
                            "mask_worn_incorrectly=without_mask", "--split", (o.out / "split.json").string(),
                            "--subset", "val"});
  ASSERT_EQ(fit.exit_code, 0) << fit.err;
  EXPECT_EQ(read_json(o.out / "model.json")["quality_gate"]["judges"], judged);
}

TEST(Train, ResumeAfterAnInterruptionReachesTheSameWeights) {
  TempDir dir;
  const auto whole = small_options(dir / "whole");
  ASSERT_TRUE(train_mask_model(whole).completed);

  auto part = small_options(dir / "parts");
  part.stop_after_epochs = 1;  // stop inside phase 1
  EXPECT_FALSE(train_mask_model(part).completed);
  EXPECT_EQ(read_json(part.out / "metrics.json")["status"], "stopped: continue with --resume");
  part.resume = true;
  part.stop_after_epochs = 2;  // then at the start of phase 2 (features must be recomputed)
  EXPECT_FALSE(train_mask_model(part).completed);
  part.stop_after_epochs = 0;
  ASSERT_TRUE(train_mask_model(part).completed);

  EXPECT_EQ(file_hash(whole.out / "model.onnx"), file_hash(part.out / "model.onnx"));
  const auto a = read_json(whole.out / "metrics.json"), b = read_json(part.out / "metrics.json");
  ASSERT_EQ(a["epochs"].size(), b["epochs"].size());
  for (size_t i = 0; i < a["epochs"].size(); ++i)
    EXPECT_EQ(a["epochs"][i]["val_loss"].get<double>(), b["epochs"][i]["val_loss"].get<double>()) << "epoch " << i;
  // Same seed, same split; another seed, another split.
  EXPECT_EQ(read_json(whole.out / "split.json")["items"], read_json(part.out / "split.json")["items"]);
  auto other = small_options(dir / "other-seed");
  other.seed = 7;
  other.epochs = 1;
  other.fine_tune_epochs = 0;
  ASSERT_TRUE(train_mask_model(other).completed);
  EXPECT_NE(read_json(whole.out / "split.json")["items"], read_json(other.out / "split.json")["items"]);
}

TEST(Train, ProtectsAnExistingRunAndRefusesAMismatchedResume) {
  TempDir dir;
  auto o = small_options(dir / "run");
  o.epochs = 1;
  o.fine_tune_epochs = 0;
  ASSERT_TRUE(train_mask_model(o).completed);
  // 96 images: too few validation images to fit a temperature. Said so, not "ECE 0 -> 0".
  const auto calibration = read_json(o.out / "metrics.json")["calibration"];
  EXPECT_NE(calibration.value("skipped", "").find("validation images, fewer than 100"), std::string::npos)
      << calibration;
  EXPECT_FALSE(calibration.contains("test_ece")) << calibration;
  EXPECT_NE(read_bytes(o.out / "MODEL_CARD.md").find("Probabilities are not calibrated ("), std::string::npos);
  EXPECT_THROW(train_mask_model(o), Error);  // would overwrite
  auto changed = o;
  changed.resume = true;
  changed.batch = 8;
  EXPECT_THROW(train_mask_model(changed), Error);  // other options than the checkpoint's
  // A resume of the complete run trains nothing and writes nothing: model.json keeps what came
  // after the run (here a key standing for a gate fitted by eval --fit-gate; it was lost).
  auto meta = read_json(o.out / "model.json");
  meta["fitted_later"] = true;
  write_json_atomic(o.out / "model.json", meta);
  const std::string card = read_bytes(o.out / "MODEL_CARD.md");
  auto again = o;
  again.resume = true;
  const auto r = train_mask_model(again);
  EXPECT_TRUE(r.completed && r.already_complete);
  EXPECT_EQ(read_json(o.out / "model.json"), meta);
  EXPECT_EQ(read_bytes(o.out / "MODEL_CARD.md"), card);
  auto forced = o;
  forced.force = true;
  EXPECT_TRUE(train_mask_model(forced).completed);
}

TEST(Train, BrokenImagesAreSkippedAndListed) {
  TempDir dir;
  // 20 real images per class (links) plus one corrupt file and one non-image.
  for (const char* cls : {"with_mask", "without_mask"}) {
    fs::create_directories(dir / "data" / cls);
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(shared_path("data/seed-masks") / cls)) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (size_t i = 0; i < 20; ++i) fs::create_symlink(files[i], dir / "data" / cls / files[i].filename());
  }
  write_bytes(dir / "data/with_mask/corrupt.jpg", "not really a jpeg");
  write_bytes(dir / "data/without_mask/notes.txt", "ignored");
  auto o = small_options(dir / "run");
  o.data = {dir / "data"};
  o.limit_per_class = 0;
  o.epochs = 1;
  o.fine_tune_epochs = 0;
  ASSERT_TRUE(train_mask_model(o).completed);
  const auto m = read_json(o.out / "metrics.json");
  EXPECT_EQ(m["data"]["skipped_count"], 1);
  EXPECT_EQ(m["data"]["skipped"][0]["image"], "data/with_mask/corrupt.jpg");
  EXPECT_EQ(m["data"]["ignored_non_image_files"], 1);
  EXPECT_EQ(m["data"]["images"], 40);
}

TEST(TrainCli, BadDataGivesExitCode1) {
  TempDir dir;
  fs::create_directories(dir / "data/only_one_class");
  const auto r = run_cli({"train", "--data", (dir / "data").string(), "--out", (dir / "out").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("at least 2"), std::string::npos) << r.err;
  const auto bad_size = run_cli({"train", "--data", shared_path("data/seed-masks").string(), "--out",
                                 (dir / "out").string(), "--input-size", "100"});
  EXPECT_EQ(bad_size.exit_code, 2);  // a usage error, before any work (1 after the data had loaded until 2026-12-07)
  EXPECT_NE(bad_size.err.find("multiple of 32"), std::string::npos) << bad_size.err;
}

TEST(Train, TwoSourcesGivePerSourceMetricsAndACalibratedExport) {
  TempDir dir;
  auto o = small_options(dir / "run");
  o.data = {shared_path("data/seed-masks"), shared_path("data/real-masks")};
  o.limit_per_class = 130;
  o.fractions = {0.40, 0.45, 0.15};  // enough validation images (>= 100) to fit a temperature
  o.epochs = 3;
  o.fine_tune_epochs = 1;
  o.views = 2;
  const auto r = train_mask_model(o);
  ASSERT_TRUE(r.completed);
  const auto& m = r.metrics;
  // Per-source test metrics add up to the overall ones.
  int n = 0;
  for (const auto& [source, rep] : m.test.per_source) n += rep.n;
  EXPECT_EQ(n, m.test.overall.n);
  EXPECT_GE(m.test.per_source.size(), 3u);
  EXPECT_TRUE(m.test.per_source.count("seed-masks"));
  const auto j = read_json(o.out / "metrics.json");
  EXPECT_TRUE(j["test"]["per_source"].contains("seed-masks"));
  EXPECT_TRUE(j["split"]["counts_by_source"]["test"].contains("seed-masks"));
  // Every source's class mix is split alike (stratified by source and class): each source
  // with at least 10 images of a class has some of them in test.
  for (const auto& [source, counts] : j["data"]["per_source"].items())
    for (const auto& [cls, count] : counts.items())
      if (count.get<int>() >= 10)
        EXPECT_GT(j["split"]["counts_by_source"]["test"][source].value(cls, 0), 0) << source << " " << cls;
  // Calibration: a temperature was fitted, folded into the export, and recorded in the sidecar.
  EXPECT_NE(m.calibration.temperature, 1.0);
  EXPECT_LE(m.calibration.val_nll_after, m.calibration.val_nll_before + 1e-9);
  MaskClassifier clf(o.out / "model.onnx");
  EXPECT_NEAR(ModelMeta::load(o.out / "model.json").temperature, m.calibration.temperature, 1e-12);
  EXPECT_LE(m.libtorch_max_abs_prob_diff, 1e-4);  // ONNX = calibrated LibTorch probabilities
  EXPECT_TRUE(fs::exists(o.out / "reliability.png"));
  // The model card names every source with its licence note.
  const auto card = read_file_text(o.out / "MODEL_CARD.md");
  EXPECT_NE(card.find("Face Mask 12K, MIT licence"), std::string::npos);
  EXPECT_NE(card.find("| seed-masks |"), std::string::npos);
}

namespace maskwatch::test {

TEST(Train, TheDefaultRecipeFoldsMasksUnderTheNoseIntoWithoutMask) {
  TrainOptions o;
  use_default_training_data(o);
  ASSERT_EQ(o.data.size(), 3u);
  EXPECT_EQ(o.data[2].filename(), "real-masks-incorrect");
  EXPECT_EQ(o.class_map.at("mask_worn_incorrectly"), "without_mask");
  EXPECT_EQ(o.source_weights.at("jolignier/mask_worn_incorrectly"), kIncorrectWeight);
  // What the caller set wins: a third class (no fold, so no folded source to weight) ...
  TrainOptions three;
  three.class_map["mask_worn_incorrectly"] = "mask_worn_incorrectly";
  use_default_training_data(three);
  EXPECT_EQ(three.class_map.at("mask_worn_incorrectly"), "mask_worn_incorrectly");
  EXPECT_TRUE(three.source_weights.empty());
  // ... or another weight.
  TrainOptions light;
  light.source_weights["jolignier/mask_worn_incorrectly"] = 1;
  use_default_training_data(light);
  EXPECT_EQ(light.source_weights.at("jolignier/mask_worn_incorrectly"), 1);
}

}  // namespace maskwatch::test

// Training sees what inference feeds the network: a grainy crop reaches the backbone smoothed
// exactly as MaskClassifier::classify smooths it, a clean one untouched.
TEST(BatchLoader, SmoothsGrainyCropsAsTheClassifierDoes) {
  const int size = 96;
  cv::Mat clean(size, size, CV_8UC3, cv::Scalar(90, 120, 160));
  cv::rectangle(clean, {30, 30}, {66, 66}, cv::Scalar(40, 60, 200), cv::FILLED);  // some structure
  cv::Mat grainy = clean.clone();
  cv::Mat noise(size, size, CV_16SC3);
  cv::theRNG().state = 7;
  cv::randn(noise, 0, 10);  // ~4 % of full scale: well over kNoisyFace
  grainy.convertTo(grainy, CV_16SC3);
  grainy += noise;
  grainy.convertTo(grainy, CV_8UC3);
  ASSERT_LT(measure_face_quality(clean).noise, kNoisyFace);
  ASSERT_GE(measure_face_quality(grainy).noise, kNoisyFace);

  const std::vector<cv::Mat> images = {clean, grainy};
  AugmentOptions plain;
  plain.enabled = false;  // the crops as they are: only the smoothing differs
  auto batch_of = [&](bool smooth) {
    BatchLoader loader(images, {{0, 1}}, plain, 1, size, smooth);
    Batch b;
    EXPECT_TRUE(loader.next(b));
    return b.images;
  };
  const auto raw = batch_of(false), smoothed = batch_of(true);
  EXPECT_TRUE(torch::equal(raw[0], smoothed[0]));  // clean: untouched
  EXPECT_FALSE(torch::equal(raw[1], smoothed[1]));
  // The smoothed grainy crop is what smoothed_if_noisy makes of it.
  const cv::Mat expected = smoothed_if_noisy(grainy, measure_face_quality(grainy));
  const std::vector<cv::Mat> expected_images = {expected};  // the loader keeps a reference
  BatchLoader direct(expected_images, {{0}}, plain, 1, size, false);
  Batch e;
  ASSERT_TRUE(direct.next(e));
  EXPECT_TRUE(torch::allclose(smoothed[1], e.images[0]));
  // And it is smoother: less pixel-to-pixel variation than the raw grainy crop.
  auto roughness = [](const torch::Tensor& t) {
    return (t.slice(2, 1) - t.slice(2, 0, -1)).abs().mean().item<double>();
  };
  EXPECT_LT(roughness(smoothed[1]), 0.7 * roughness(raw[1]));
}
