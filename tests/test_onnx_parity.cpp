// The exported ONNX model, run by OpenCV DNN, must give the same probabilities as the
// LibTorch network it came from (max abs difference <= 1e-4), on random and real inputs.
#include <gtest/gtest.h>

#include <onnx/onnx_pb.h>

#include <set>

#include "model_fixtures.h"
#include "nn/blob_tensor.h"
#include "nn/onnx_export.h"
#include "support.h"
#include "util/error.h"
#include "vision/mask_classifier.h"
#include "vision/xnnpack_net.h"

using namespace maskwatch;
using namespace maskwatch::test;

namespace {

torch::Tensor torch_probs(MaskNet& net, const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  net->eval();
  return torch::softmax(net->forward(x), 1);
}

double max_abs_diff(const cv::Mat& cv_out, const torch::Tensor& t) {
  const auto c = t.contiguous();
  EXPECT_EQ(cv_out.total(), static_cast<size_t>(c.numel()));
  double m = 0;
  const float* a = cv_out.ptr<float>();
  const float* b = c.data_ptr<float>();
  for (size_t i = 0; i < cv_out.total(); ++i) m = std::max(m, static_cast<double>(std::abs(a[i] - b[i])));
  return m;
}

std::set<std::string> op_types(const std::string& bytes) {
  onnx::ModelProto m;
  EXPECT_TRUE(m.ParseFromString(bytes));
  std::set<std::string> ops;
  for (const auto& n : m.graph().node()) ops.insert(n.op_type());
  return ops;
}

}  // namespace

class OnnxParity : public ::testing::TestWithParam<int> {};

TEST_P(OnnxParity, OpenCvMatchesLibTorchOnRandomAndRealInputs) {
  const int size = GetParam();
  torch::manual_seed(size);
  auto net = imported_mask_net(3);
  randomize_batchnorm(net->backbone);  // so BN folding is exercised, not just identity BNs
  OnnxExportOptions o;
  o.input_size = size;
  const std::string bytes = export_classifier_onnx(net, o);
  auto cvnet = load_onnx_net(bytes, "parity");

  const cv::Mat random_blob = [&] {
    const auto x = (torch::rand({4, 3, size, size}) * 2 - 1).contiguous();
    cv::Mat m({4, 3, size, size}, CV_32F);
    std::memcpy(m.ptr<float>(), x.data_ptr<float>(), static_cast<size_t>(x.numel()) * 4);
    return m;
  }();
  const cv::Mat real_blob = make_blob(real_images(), size);
  XnnpackNet xnn(bytes, size);
  for (const cv::Mat* blob : {&random_blob, &real_blob}) {
    cvnet.setInput(*blob);
    const cv::Mat out = cvnet.forward();
    const auto reference = torch_probs(net, blob_to_tensor(*blob));
    EXPECT_LE(max_abs_diff(out, reference), 1e-4) << "OpenCV DNN, input size " << size;
    // The engine `run` uses: the same tolerance against LibTorch.
    EXPECT_LE(max_abs_diff(xnn.forward(*blob), reference), 1e-4) << "XNNPACK, input size " << size;
  }
}

INSTANTIATE_TEST_SUITE_P(InputSizes, OnnxParity, ::testing::Values(96, 160, 224));

TEST(Xnnpack, RefusesOperatorsItDoesNotKnowInsteadOfRunningThemWrong) {
  auto net = imported_mask_net(2);
  onnx::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(export_classifier_onnx(net, {})));
  for (auto& n : *m.mutable_graph()->mutable_node())
    if (n.op_type() == "Relu") n.set_op_type("LeakyRelu");
  try {
    XnnpackNet xnn(m.SerializeAsString(), 224);
    FAIL() << "built a graph with an unknown operator";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("LeakyRelu"), std::string::npos) << e.what();
  }
  // A grouped (not depthwise) convolution is refused too.
  ASSERT_TRUE(m.ParseFromString(export_classifier_onnx(net, {})));
  auto* conv = m.mutable_graph()->mutable_node(0);
  ASSERT_EQ(conv->op_type(), "Conv");
  for (auto& a : *conv->mutable_attribute())
    if (a.name() == "group") a.set_i(3);
  EXPECT_THROW(XnnpackNet(m.SerializeAsString(), 224), Error);
  // Attributes that do not fit (three pads) are an error, not an out-of-range read.
  ASSERT_TRUE(m.ParseFromString(export_classifier_onnx(net, {})));
  for (auto& a : *m.mutable_graph()->mutable_node(0)->mutable_attribute())
    if (a.name() == "pads") a.mutable_ints()->RemoveLast();
  EXPECT_THROW(XnnpackNet(m.SerializeAsString(), 224), Error);
  // So is an input too small for the network's kernels.
  EXPECT_THROW(XnnpackNet(export_classifier_onnx(net, {}), 8), Error);
}

// The converted weights are dropped once packed; moving between the thread pool and one
// thread rebuilds the runtime from a reloaded model, with the same outputs. A model that can
// no longer be read leaves the working runtime in place.
TEST(Xnnpack, RebuildsFromTheReloadedModelWhenItLeavesOrRejoinsThePool) {
  auto net = imported_mask_net(2);
  const std::string bytes = export_classifier_onnx(net, {});
  int reloads = 0;
  bool reload_works = true;
  const auto parse = [&] {
    onnx::ModelProto m;
    if (!reload_works || !m.ParseFromString(bytes)) throw Error("the model file is gone");
    return m;
  };
  const auto reload = [&] {
    ++reloads;
    return parse();
  };
  XnnpackNet xnn(parse(), 224, 2, reload);
  ASSERT_TRUE(xnn.pooled());
  xnn.set_pooled(true);  // pinned: a busy CI machine must not move it between the checks
  EXPECT_EQ(reloads, 0);
  const cv::Mat blob = make_blob(real_images(), 224);
  const cv::Mat pooled = xnn.forward(blob);
  xnn.set_pooled(false);
  EXPECT_FALSE(xnn.pooled());
  EXPECT_EQ(reloads, 1);
  EXPECT_LE(cv::norm(xnn.forward(blob), pooled, cv::NORM_INF), 1e-6);
  xnn.set_pooled(true);
  EXPECT_TRUE(xnn.pooled());
  EXPECT_EQ(reloads, 2);
  EXPECT_LE(cv::norm(xnn.forward(blob), pooled, cv::NORM_INF), 1e-6);
  reload_works = false;
  xnn.set_pooled(false);
  EXPECT_TRUE(xnn.pooled());  // stayed where it was
  EXPECT_EQ(reloads, 3);
  EXPECT_LE(cv::norm(xnn.forward(blob), pooled, cv::NORM_INF), 1e-6);
  xnn.set_pooled(false);
  EXPECT_EQ(reloads, 3);  // and does not try again on every inference
}

TEST(OnnxExport, UsesOnlyOpsOpenCv46Reads) {
  auto net = imported_mask_net(2);
  const auto ops = op_types(export_classifier_onnx(net, {}));
  const std::set<std::string> allowed = {"Conv",    "Clip", "Add",  "GlobalAveragePool",
                                         "Flatten", "Gemm", "Relu", "Softmax"};
  for (const auto& op : ops) EXPECT_TRUE(allowed.count(op)) << op;
  EXPECT_TRUE(ops.count("Clip"));
  EXPECT_FALSE(ops.count("BatchNormalization"));  // folded
}

TEST(OnnxExport, BackbonePrefixMatchesLibTorchStages) {
  torch::manual_seed(3);
  auto net = imported_mask_net(2);
  OnnxExportOptions o;
  o.input_size = 128;
  for (const auto& [last, pool] : std::vector<std::pair<int, bool>>{{14, false}, {kNumStages - 1, true}}) {
    auto cvnet = load_onnx_net(export_backbone_onnx(net->backbone, last, pool, o), "prefix");
    const cv::Mat blob = make_blob(real_images(), 128);
    cvnet.setInput(blob);
    const cv::Mat out = cvnet.forward();
    torch::NoGradGuard no_grad;
    auto ref = net->backbone->forward_stages(blob_to_tensor(blob), 0, last);
    if (pool) ref = MaskNet::Impl::pool(ref);
    EXPECT_LE(max_abs_diff(out, ref), 1e-3) << "stage " << last;  // raw activations (up to ~20), not probabilities
  }
}

TEST(MaskClassifier, LoadsASavedModelAndClassifiesLikeLibTorch) {
  torch::manual_seed(11);
  auto net = imported_mask_net(2);
  TempDir dir;
  ModelMeta meta;
  meta.classes = {"with_mask", "without_mask"};
  save_model(dir / "model.onnx", net, meta, {});
  const auto images = real_images();
  const auto ref = torch_probs(net, images_to_tensor(images, 224));
  for (auto engine : {InferenceEngine::Xnnpack, InferenceEngine::OpenCvDnn}) {
    MaskClassifier clf(dir / "model.onnx", {}, engine);
    EXPECT_EQ(clf.engine(), engine);
    EXPECT_EQ(clf.classes(), meta.classes);
    EXPECT_EQ(clf.input_size(), 224);
    const auto preds = clf.classify(images);
    ASSERT_EQ(preds.size(), images.size());
    for (size_t i = 0; i < preds.size(); ++i) {
      const auto row = ref[static_cast<int64_t>(i)];
      EXPECT_EQ(preds[i].label, row.argmax().item<int64_t>()) << inference_engine_name(engine);
      EXPECT_NEAR(preds[i].score, row.max().item<float>(), 1e-4) << inference_engine_name(engine);
      EXPECT_NEAR(preds[i].probs[0] + preds[i].probs[1], 1.0, 1e-5);
    }
  }
}

TEST(Xnnpack, LeavesThePoolWhenTheCoresAreBusyAndComesBackWhenFree) {
  PoolChoice c;
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(c.update(5.9, 6.0));  // idle: 98 % of a core
  // Beside a busy process the classifying thread gets 64 % of a core: off the pool within
  // a handful of inferences.
  int pooled_after = 0;
  for (int i = 0; i < 20; ++i) pooled_after += c.update(48.0, 75.0);
  EXPECT_FALSE(c.pooled());
  EXPECT_LE(pooled_after, PoolChoice::kMinPooledBeforeLeaving);
  // Still busy (one thread gets 76 %): stays alone, however long.
  for (int i = 0; i < 200; ++i) EXPECT_FALSE(c.update(11.5, 15.1));
  // Free again: back on the pool within a few inferences.
  int alone = 0;
  while (!c.update(10.7, 10.9) && alone < 1000) ++alone;
  EXPECT_LT(alone, 15);
  // A short burst of contention: off the pool, and back only after 30 inferences alone.
  for (int i = 0; i < 10; ++i) c.update(48.0, 75.0);
  ASSERT_FALSE(c.pooled());
  alone = 0;
  while (!c.update(10.7, 10.9) && alone < 1000) ++alone;
  EXPECT_GE(alone + 1, PoolChoice::kMinAloneBeforeReturning - 10);
  EXPECT_LT(alone, 40);
  // A single slow inference does not move it.
  for (int i = 0; i < 40; ++i) c.update(5.9, 6.0);
  EXPECT_TRUE(c.update(3.0, 9.0));
  EXPECT_TRUE(c.pooled());
}
