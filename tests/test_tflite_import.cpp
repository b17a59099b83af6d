#include <gtest/gtest.h>

#include <fmt/format.h>

#include <fstream>
#include <map>

#include "model/tflite_reader.h"
#include "model_fixtures.h"
#include "nn/imagenet.h"
#include "nn/tflite_import.h"
#include "support.h"
#include "tflite_writer.h"
#include "util/error.h"
#include "util/files.h"
#include "util/json_io.h"
#include "util/paths.h"

using namespace maskwatch;
using namespace maskwatch::test;

namespace {

void expect_imagenet_matches(const std::string& file) {
  const auto expected = read_json(shared_path("samples/imagenet/expected.json"));
  auto net = load_imagenet_mobilenet(asset(file));
  const auto labels = read_labels(asset(kImagenetLabels));
  ASSERT_EQ(labels.size(), 1001u);
  for (const auto& [image, label] : expected["expected_top1"].items()) {
    const auto top = imagenet_topk(net, labels, shared_path("samples/imagenet/" + image), 5);
    ASSERT_FALSE(top.empty());
    EXPECT_EQ(top[0].label, label.get<std::string>()) << file << " " << image;
    const double measured = expected["measured_top1_probability"][file][image].get<double>();
    EXPECT_NEAR(top[0].prob, measured, 0.05) << file << " " << image;
  }
}

}  // namespace

TEST(TfliteImport, QuantizedUint8FileGivesExpectedImagenetClasses) { expect_imagenet_matches(kQuantBackbone); }
TEST(TfliteImport, PerChannelInt8FileGivesExpectedImagenetClasses) { expect_imagenet_matches(kPtqBackbone); }

TEST(TfliteImport, ReportsWeightFormats) {
  TfliteImportReport a, b;
  load_imagenet_mobilenet(asset(kQuantBackbone), &a);
  load_imagenet_mobilenet(asset(kPtqBackbone), &b);
  EXPECT_EQ(a.weight_format, "uint8 per-tensor");
  EXPECT_EQ(b.weight_format, "int8 per-channel");
  EXPECT_EQ(a.convs, 52);
  EXPECT_EQ(a.top_classes, 1001);
  EXPECT_EQ(b.top_classes, 1001);
  EXPECT_EQ(a.official_name, kQuantBackbone);
  EXPECT_EQ(b.official_name, kPtqBackbone);
}

// The list compiled in is the one setup.sh verifies.
TEST(TfliteImport, OfficialBackbonesAreThoseSetupVerifies) {
  std::ifstream in(std::filesystem::path(MASKWATCH_TEST_SOURCE_DIR) / "scripts/assets.sha256");
  std::map<std::string, std::string> listed;
  for (std::string sha, name; in >> sha >> name;) listed[name] = sha;
  ASSERT_FALSE(listed.empty());
  for (const auto& known : kOfficialBackbones) EXPECT_EQ(listed[known.name], known.sha256) << known.name;
}

// A copy with one weight byte changed still parses and imports, but is not called official
// (a damaged copy had imported silently and called a cat a cowboy hat).
TEST(TfliteImport, ADamagedCopyIsNotTakenForTheOfficialFile) {
  auto bytes = read_file_bytes(asset(kQuantBackbone), "TFLite file");
  bytes[bytes.size() / 2] ^= 0x5A;
  TempDir dir;
  write_bytes(dir / kQuantBackbone, std::string(bytes.begin(), bytes.end()));
  TfliteImportReport report;
  load_imagenet_mobilenet(dir / kQuantBackbone, &report);
  EXPECT_EQ(report.official_name, "");
  EXPECT_EQ(report.sha256.size(), 64u);
  EXPECT_EQ(report.convs, 52);
}

TEST(TfliteReader, DequantizesPerTensorAndPerChannel) {
  const auto quant = tflite::read_model(asset(kQuantBackbone));
  const auto ptq = tflite::read_model(asset(kPtqBackbone));
  // Find the first conv weight of each and check dequantization by hand for one element.
  for (const auto* m : {&quant, &ptq}) {
    const auto& op = m->operators.at(0).op == tflite::Op::Conv2D ? m->operators[0] : m->operators.at(1);
    const int wi = op.inputs.at(1);
    const auto& t = m->tensors.at(static_cast<size_t>(wi));
    const auto values = m->dequantize(wi);
    ASSERT_EQ(static_cast<int64_t>(values.size()), t.num_elements());
    const size_t last = values.size() - 1;  // last element belongs to the last output channel
    const size_t c = t.scale.size() > 1 ? t.scale.size() - 1 : 0;
    const double q = t.type == tflite::TensorType::UInt8 ? m->bytes[t.offset + last]
                                                         : static_cast<int8_t>(m->bytes[t.offset + last]);
    EXPECT_FLOAT_EQ(values[last], static_cast<float>((q - t.zero_point[c]) * t.scale[c]));
  }
}

class TfliteRoundTrip : public ::testing::TestWithParam<WeightEncoding> {};

TEST_P(TfliteRoundTrip, FileWrittenFromANetworkImportsBackToTheSameOutputs) {
  torch::manual_seed(7);
  MobileNetV2 source(10);
  randomize_batchnorm(source);
  source->eval();
  TempDir dir;
  write_bytes(dir / "net.tflite", write_tflite(layers_of(source), GetParam()));
  TfliteImportReport report;
  auto loaded = load_imagenet_mobilenet(dir / "net.tflite", &report);
  EXPECT_EQ(report.top_classes, 10);
  torch::NoGradGuard no_grad;
  const auto x = torch::rand({2, 3, 160, 160}) * 2 - 1;
  const auto a = torch::softmax(source->forward(x), 1), b = torch::softmax(loaded->forward(x), 1);
  const double tol = GetParam() == WeightEncoding::Float32 ? 1e-5 : 0.05;
  EXPECT_LT((a - b).abs().max().item<double>(), tol);
  if (GetParam() == WeightEncoding::Float32) EXPECT_EQ(report.weight_format, "float32");
  if (GetParam() == WeightEncoding::Int8PerChannel) EXPECT_EQ(report.weight_format, "int8 per-channel");
}

INSTANTIATE_TEST_SUITE_P(Encodings, TfliteRoundTrip,
                         ::testing::Values(WeightEncoding::Float32, WeightEncoding::Float16,
                                           WeightEncoding::Int8PerChannel));

TEST(TfliteImport, RefusesAWrongShapeNamingTheTensor) {
  MobileNetV2 source(5);
  auto layers = layers_of(source);
  // block_3 expand: make it 8 channels too many.
  auto& l = layers.at(9);
  ASSERT_EQ(l.name, "block_3_expand/weights");
  l.shape[0] += 8;
  l.weight.resize(static_cast<size_t>(l.shape[0] * l.shape[1] * l.shape[2] * l.shape[3]), 0.f);
  TempDir dir;
  write_bytes(dir / "bad.tflite", write_tflite(layers, WeightEncoding::Float32));
  try {
    load_imagenet_mobilenet(dir / "bad.tflite");
    FAIL() << "accepted a file that is not MobileNetV2-shaped";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'block_3_expand/weights'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("152x1x1x24"), std::string::npos) << e.what();
  }
}

TEST(TfliteImport, RefusesAFileWithTooFewLayers) {
  MobileNetV2 source(0);
  auto layers = layers_of(source);
  layers.resize(20);
  TempDir dir;
  write_bytes(dir / "short.tflite", write_tflite(layers, WeightEncoding::Float32));
  MobileNetV2 net;
  try {
    import_tflite(dir / "short.tflite", net);
    FAIL() << "accepted a truncated network";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("only 20 convolutions"), std::string::npos) << e.what();
  }
}
