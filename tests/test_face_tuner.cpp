// Fine-tuning the face detector: the LibTorch copy of the YuNet graph computes what OpenCV
// computes, writes the graph back with its weights, refuses graphs it cannot train, and a
// short real fine-tuning on real scenes runs end to end and writes a model the detector takes.
#include <gtest/gtest.h>

#include <onnx/onnx_pb.h>

#include <cmath>
#include <opencv2/dnn.hpp>
#include <opencv2/imgproc.hpp>

#include "eval/scene_eval.h"
#include "eval/voc.h"
#include "media/image_io.h"
#include "nn/onnx_conv_graph.h"
#include "nn/torch_setup.h"
#include "support.h"
#include "train/face_tuner.h"
#include "util/error.h"
#include "util/files.h"
#include "util/paths.h"
#include "vision/face_detector.h"

using namespace maskwatch;
using namespace maskwatch::test;

namespace {

const std::vector<std::string> kOutputs = {"cls_8", "obj_16", "bbox_32"};

// A real scene, scaled and cut to 320x256 (sides multiples of 32: no padding anywhere).
cv::Mat scene_input() {
  const auto images = list_image_files(shared_path("data/scenes-dev/images"));
  cv::Mat img = load_image_or_throw(images.at(3)), small;
  cv::resize(img, small, cv::Size(320, 320 * img.rows / img.cols));
  return small(cv::Rect(0, 0, 320, std::min(256, small.rows))).clone();
}

// OpenCV DNN's outputs of `model` on `img` (BGR 0-255, as the detector feeds it).
std::vector<cv::Mat> opencv_outputs(const std::filesystem::path& model, const cv::Mat& img) {
  cv::dnn::Net net = cv::dnn::readNetFromONNX(model.string());
  net.setInput(cv::dnn::blobFromImage(img, 1.0, cv::Size(), cv::Scalar(), false, false, CV_32F));
  std::vector<cv::Mat> outs;
  net.forward(outs, kOutputs);
  return outs;
}

// The graph's NCHW map laid out as the ONNX output ([cells, channels]), sigmoid applied if asked.
cv::Mat as_rows(const torch::Tensor& t, bool sigmoid) {
  auto r = t.detach().permute({0, 2, 3, 1}).reshape({-1, t.size(1)}).contiguous();
  if (sigmoid) r = torch::sigmoid(r);
  return cv::Mat(static_cast<int>(r.size(0)), static_cast<int>(r.size(1)), CV_32F, r.data_ptr<float>()).clone();
}

torch::Tensor to_tensor(const cv::Mat& bgr) {
  return torch::from_blob(bgr.data, {bgr.rows, bgr.cols, 3}, torch::kUInt8).permute({2, 0, 1}).unsqueeze(0).to(
      torch::kFloat32);
}

}  // namespace

TEST(OnnxConvGraph, ComputesWhatOpenCvComputesOnTheRealDetector) {
  const auto model = asset("yunet_n_320_320.onnx");
  const cv::Mat img = scene_input();
  OnnxConvGraph g(model, kOutputs);
  const auto ours = g.forward(to_tensor(img));
  const auto theirs = opencv_outputs(model, img);
  ASSERT_EQ(ours.size(), 3u);
  for (size_t k = 0; k < 3; ++k) {
    const cv::Mat a = as_rows(ours[k], k < 2), b = theirs[k].reshape(1, a.rows);
    ASSERT_EQ(a.size(), b.size()) << kOutputs[k];
    EXPECT_LT(cv::norm(a, b, cv::NORM_INF), 2e-4) << kOutputs[k];
    EXPECT_GT(cv::norm(a, cv::NORM_INF), 0.1) << kOutputs[k];  // not all zeros
  }
}

TEST(OnnxConvGraph, WritesTheGraphBackWithItsWeights) {
  // Saved as it is: OpenCV reads the same numbers. With the objectness head's bias pushed
  // down by 20: objectness ~0 everywhere, so the detector finds no face, and its refusal
  // checks (a 2023 YuNet) still pass.
  const auto model = asset("yunet_n_320_320.onnx");
  const cv::Mat img = scene_input();
  TempDir d;
  OnnxConvGraph g(model, kOutputs);
  g.save_onnx(d / "same.onnx");
  const auto a = opencv_outputs(model, img), b = opencv_outputs(d / "same.onnx", img);
  for (size_t k = 0; k < 3; ++k) EXPECT_EQ(cv::norm(a[k], b[k], cv::NORM_INF), 0.0) << kOutputs[k];

  int changed = 0;
  for (auto& [name, p] : g.parameters())
    if (name.rfind("bbox_head.multi_level_obj.", 0) == 0 && name.find("conv2.bias") != std::string::npos) {
      torch::NoGradGuard no_grad;
      p.sub_(20.0f);
      ++changed;
    }
  EXPECT_EQ(changed, 1);  // only the stride-16 head is needed for obj_16
  BoxCorrection corr;
  corr.dy[0] = 0.0625f, corr.lw[1] = -0.04f;
  g.save_onnx(d / "blind.onnx", {{kBoxCorrectionMetadataKey, corr.to_text()}});
  const auto c = opencv_outputs(d / "blind.onnx", img);
  double max_obj = 0;
  cv::minMaxLoc(c[1].reshape(1, static_cast<int>(c[1].total())), nullptr, &max_obj);
  EXPECT_LT(max_obj, 1e-6);
  EXPECT_EQ(cv::norm(a[0], c[0], cv::NORM_INF), 0.0);  // the other heads untouched
  // The box correction recorded in the metadata is the one the detector applies.
  FaceDetectorOptions fo;
  fo.model = d / "blind.onnx";
  FaceDetector det(fo);
  EXPECT_EQ(det.box_correction().to_text(), corr.to_text());
}

TEST(OnnxConvGraph, RefusesAGraphItCannotTrainNamingTheFileAndTheNode) {
  // The 2022 YuNet's outputs come through Softmax/Concat/Flatten layers.
  const auto model = asset("face_detection_yunet_2022.onnx");
  try {
    OnnxConvGraph g(model, {"conf"});
    FAIL() << "accepted";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("face_detection_yunet_2022.onnx"), std::string::npos) << what;
    EXPECT_NE(what.find("can be fine-tuned"), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
}

namespace {

// Face AP (headline matching, class-agnostic) of a detector on the scenes of `dir`.
double face_ap(const std::filesystem::path& dir, const std::filesystem::path& model) {
  FaceDetectorOptions o;
  o.model = model;
  o.score_threshold = 0.3f;
  FaceDetector det(o);
  std::vector<GroundTruthBox> truth;
  std::vector<ScoredBox> found;
  int id = 0;
  for (const auto& xml : voc_annotation_files(dir)) {
    const auto a = parse_voc(xml);
    for (const auto& obj : a.objects) truth.push_back({id, obj.box, 0, obj.difficult, false});
    for (const auto& f : det.detect(load_image_or_throw(voc_image_path(dir, a)))) found.push_back({id, f.box, f.score, 0});
    ++id;
  }
  return average_precision(truth, found, -1).ap;
}

}  // namespace

TEST(FaceTuner, AShortRealFineTuningKeepsWhatTheDetectorKnowsAndRecordsItsCalibration) {
  // 48 real scenes, 6 epochs (36 steps): the loss falls; the 4 held-out scenes are left out;
  // the file is a 2023 YuNet the detector takes, with a box correction refitted for its boxes
  // (near the base model's) and the score exponent (log 0.6 / log 0.4) in its metadata; and
  // its face AP on those scenes stays near the stock detector's (measured on 2026-12-04: stock
  // 0.9416, tuned 0.9450 with the refitted correction, 0.9282 with the stock one; a fit on the
  // scenes it is scored on, so optimistic). The held-out gain needs the full recipe (12 epochs over 1,204 scenes; README
  // "Face stage"), which is too long for a test.
  setup_training_compute(0);
  const auto src = shared_path("data/scenes-dev");
  TempDir d;
  std::filesystem::create_directories(d / "annotations");
  std::filesystem::create_directories(d / "images");
  const auto xmls = voc_annotation_files(src);
  for (size_t i = 0; i < 52; ++i) {
    const auto a = parse_voc(xmls[i]);
    std::filesystem::create_symlink(xmls[i], d / "annotations" / xmls[i].filename());
    const auto img = voc_image_path(src, a);
    std::filesystem::create_symlink(img, d / "images" / img.filename());
  }
  FaceTuneOptions o;
  o.scenes = d.path;
  o.base_model = asset("yunet_n_640_640.onnx");
  o.out = d / "tuned.onnx";
  o.epochs = 6;
  for (size_t i = 48; i < 52; ++i) o.held_out.insert(voc_image_path(src, parse_voc(xmls[i])).filename().string());
  const auto r = tune_face_detector(o);
  EXPECT_EQ(r.scenes, 48);
  EXPECT_EQ(r.held_out, 4);
  EXPECT_LT(r.last_loss, r.first_loss);
  for (const auto& name : o.held_out) std::filesystem::remove(d / "images" / name);
  for (size_t i = 48; i < 52; ++i) std::filesystem::remove(d / "annotations" / xmls[i].filename());
  const double before = face_ap(d.path, "yunet-n"), after = face_ap(d.path, o.out);
  std::cout << "face AP on the 48 training scenes: stock " << before << ", fine-tuned " << after << "\n";
  EXPECT_GT(before, 0.9);
  EXPECT_GT(after, before - 0.04);
  FaceDetectorOptions fo;
  fo.model = o.out;
  FaceDetector tuned(fo);
  EXPECT_EQ(tuned.kind(), FaceModelKind::Yunet2023);
  // The correction refitted for the tuned model's boxes: what the report says, and close to the
  // stock model's (a short run moves the boxes little), term by term.
  EXPECT_EQ(tuned.box_correction().to_text(), r.correction.to_text());
  EXPECT_FALSE(tuned.box_correction().identity());
  // The refit's scratch copy of the model is gone; --out was written once, with its correction.
  for (const auto& entry : std::filesystem::directory_iterator(o.out.parent_path()))
    EXPECT_EQ(entry.path().filename().string().find(".refit."), std::string::npos) << entry.path();
  fo.model = "yunet-n";
  const BoxCorrection stock = FaceDetector(fo).box_correction(), refit = tuned.box_correction();
  EXPECT_NE(refit.to_text(), stock.to_text());
  for (int k = 0; k < 2; ++k) {
    EXPECT_NEAR(refit.dx[k], stock.dx[k], 0.05) << refit.to_text() << " vs " << stock.to_text();
    EXPECT_NEAR(refit.dy[k], stock.dy[k], 0.05) << refit.to_text() << " vs " << stock.to_text();
    EXPECT_NEAR(refit.lw[k], stock.lw[k], 0.06) << refit.to_text() << " vs " << stock.to_text();
    EXPECT_NEAR(refit.lh[k], stock.lh[k], 0.06) << refit.to_text() << " vs " << stock.to_text();
  }
  EXPECT_NEAR(score_exponent_of(read_file_bytes(o.out)), std::log(0.6) / std::log(0.4), 1e-3);
}
