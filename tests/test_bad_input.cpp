// Bad files must give a one-line Error (exit code 1 from the CLI) - never a crash or hang.
// Truncations and random corruptions of the real .tflite, .onnx and model.json files.
#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>
#include <random>

#include "media/image_io.h"
#include "model/tflite_reader.h"
#include "model_fixtures.h"
#include "nn/onnx_export.h"
#include "nn/tflite_import.h"
#include "support.h"
#include "util/error.h"
#include "util/files.h"
#include "util/json_io.h"
#include "util/paths.h"
#include "util/sha256.h"
#include "vision/mask_classifier.h"

using namespace maskwatch;
using namespace maskwatch::test;

namespace {

// Imports the bytes; returns a checksum of all weights, or NaN when refused with an Error.
// (A flip inside weight data still makes a valid file, so corruption may import.)
double import_or_error(std::vector<uint8_t> bytes, int* errors) {
  try {
    const auto model = tflite::parse_model(std::move(bytes), "corrupt.tflite");
    MobileNetV2 net(1001);
    import_tflite(model, "corrupt.tflite", net);
    double sum = 0;
    for (const auto& p : net->parameters()) sum += p.abs().sum().item<double>();
    return sum;
  } catch (const Error&) {
    ++*errors;
    return std::nan("");
  }
}

std::vector<size_t> truncation_points(size_t size, std::mt19937& rng, int n) {
  std::vector<size_t> points = {0, 1, 4, 7, 8, 16, 64, size / 2, size - 1};
  std::uniform_int_distribution<size_t> pick(0, size - 1);
  for (int i = 0; i < n; ++i) points.push_back(pick(rng));
  return points;
}

}  // namespace

TEST(BadInput, TruncatedTfliteFilesAreRefusedOrLoadTheSameWeights) {
  // Both official files end with a ZIP of labels appended after the flatbuffer (TFLite
  // metadata); cutting only that leaves the network intact. Any cut must therefore either
  // be refused or give exactly the weights of the whole file - never different ones.
  for (const char* name : {kQuantBackbone, kPtqBackbone}) {
    const auto full = read_file_bytes(asset(name));
    int errors = 0;
    const double reference = import_or_error(full, &errors);
    ASSERT_EQ(errors, 0);
    std::mt19937 rng(1);
    for (size_t n : truncation_points(full.size(), rng, 30)) {
      const double got =
          import_or_error(std::vector<uint8_t>(full.begin(), full.begin() + static_cast<long>(n)), &errors);
      EXPECT_TRUE(std::isnan(got) || got == reference) << name << " truncated to " << n << " bytes gave other weights";
      if (n < full.size() * 9 / 10) EXPECT_TRUE(std::isnan(got)) << name << " truncated to " << n << " was accepted";
    }
  }
}

TEST(BadInput, RandomlyCorruptedTfliteFilesNeverCrash) {
  const auto full = read_file_bytes(asset(kQuantBackbone));
  std::mt19937 rng(2);
  std::uniform_int_distribution<size_t> pos(0, full.size() - 1);
  std::uniform_int_distribution<int> byte(0, 255);
  int errors = 0;
  const int trials = 60;
  for (int t = 0; t < trials; ++t) {
    auto bytes = full;
    for (int k = 0; k < 16; ++k) bytes[pos(rng)] = static_cast<uint8_t>(byte(rng));
    import_or_error(std::move(bytes), &errors);
  }
  // Also the metadata region at the end of the file, where the flatbuffer tables live.
  for (int t = 0; t < trials; ++t) {
    auto bytes = full;
    std::uniform_int_distribution<size_t> tail(full.size() - 20000, full.size() - 1);
    for (int k = 0; k < 8; ++k) bytes[tail(rng)] = static_cast<uint8_t>(byte(rng));
    import_or_error(std::move(bytes), &errors);
  }
  std::vector<uint8_t> random(full.size());
  for (auto& b : random) b = static_cast<uint8_t>(byte(rng));
  import_or_error(random, &errors);
  EXPECT_GT(errors, 0);  // at least the random file and most tail corruptions are refused
}

class ModelFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::manual_seed(1);
    auto net = imported_mask_net(2);
    ModelMeta meta;
    meta.classes = {"with_mask", "without_mask"};
    save_model(dir / "model.onnx", net, meta, {});
    onnx = read_bytes(dir / "model.onnx");
    sidecar = read_bytes(dir / "model.json");
  }
  // Loads model.onnx/model.json as they are now: OK or an Error, nothing else.
  bool loads() {
    try {
      MaskClassifier clf(dir / "model.onnx");
      return true;
    } catch (const Error&) {
      return false;
    }
  }
  // Writes onnx bytes and a sidecar that vouches for them (to reach the deeper checks).
  void write_with_matching_hash(const std::string& bytes) {
    write_bytes(dir / "model.onnx", bytes);
    auto j = nlohmann::json::parse(sidecar);
    j["onnx_sha256"] = sha256_hex(bytes);
    write_bytes(dir / "model.json", j.dump());
  }
  TempDir dir;
  std::string onnx, sidecar;
};

TEST_F(ModelFiles, IntactFilesLoad) { EXPECT_TRUE(loads()); }

// A model trained on whole images (`train --no-face-crops`) given face crops, or the other way
// round: one warning that its answers there were never measured; none where they match.
TEST_F(ModelFiles, AModelGivenCropsOfAnotherKindThanItLearntFromIsWarnedAbout) {
  const auto warnings = [&](bool given_face_crops) {
    CapturedLog log("%l|%v");
    MaskClassifier(dir / "model.onnx").warn_if_crops_differ(given_face_crops, "m.onnx");
    return log.text();
  };
  EXPECT_TRUE(MaskClassifier(dir / "model.onnx").trained_on_face_crops());  // the default crop: YuNet
  EXPECT_EQ(warnings(true), "");
  EXPECT_EQ(warnings(false),
            "warning|m.onnx was trained on face crops and --no-face-crops gives it whole images: its answers on them "
            "were never measured\n");
  auto j = nlohmann::json::parse(sidecar);
  j["crop"]["face_detector"] = "none";  // what train --no-face-crops writes
  write_bytes(dir / "model.json", j.dump());
  EXPECT_FALSE(MaskClassifier(dir / "model.onnx").trained_on_face_crops());
  EXPECT_EQ(warnings(false), "");
  EXPECT_NE(warnings(true).find("warning|m.onnx was trained on whole images (train --no-face-crops) and is given face "
                                "crops here"),
            std::string::npos);
}

TEST_F(ModelFiles, MissingOrEmptyFilesAreRefused) {
  std::filesystem::remove(dir / "model.json");
  EXPECT_FALSE(loads());
  write_bytes(dir / "model.json", "");
  EXPECT_FALSE(loads());
  write_bytes(dir / "model.json", sidecar);
  write_bytes(dir / "model.onnx", "");
  EXPECT_FALSE(loads());
  std::filesystem::remove(dir / "model.onnx");
  EXPECT_FALSE(loads());
  // An empty path and a folder are named as such, not as a missing ".json" sidecar.
  const auto error_of = [](const std::filesystem::path& p) {
    try {
      MaskClassifier clf(p);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("loaded");
  };
  EXPECT_NE(error_of("").find("empty path"), std::string::npos);
  EXPECT_NE(error_of(dir.path).find("is a folder"), std::string::npos);
}

TEST_F(ModelFiles, OnnxThatDoesNotMatchTheSidecarIsRefused) {
  auto bytes = onnx;
  bytes[bytes.size() / 2] ^= 0x40;  // one flipped bit in the weights
  write_bytes(dir / "model.onnx", bytes);
  try {
    MaskClassifier clf(dir / "model.onnx");
    FAIL() << "accepted a model that differs from its sidecar";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sha256"), std::string::npos) << e.what();
  }
}

TEST_F(ModelFiles, TruncatedOnnxIsRefusedEvenWithAMatchingSidecar) {
  std::mt19937 rng(3);
  for (size_t n : truncation_points(onnx.size(), rng, 25)) {
    write_with_matching_hash(onnx.substr(0, n));
    EXPECT_FALSE(loads()) << "truncated to " << n;
  }
}

TEST_F(ModelFiles, CorruptedOnnxNeverCrashesEvenWithAMatchingSidecar) {
  std::mt19937 rng(4);
  std::uniform_int_distribution<int> byte(0, 255);
  // Protobuf structure is spread over the file; weights dominate, so aim at the small
  // structural parts too: the start and the node list at the end.
  for (int t = 0; t < 80; ++t) {
    auto bytes = onnx;
    const size_t region = t % 2 ? bytes.size() : std::min<size_t>(bytes.size(), 4096);
    std::uniform_int_distribution<size_t> pos(t % 4 == 3 ? bytes.size() - std::min<size_t>(bytes.size(), 30000) : 0,
                                              (t % 4 == 3 ? bytes.size() : region) - 1);
    for (int k = 0; k < 6; ++k) bytes[pos(rng)] = static_cast<char>(byte(rng));
    write_with_matching_hash(bytes);
    loads();  // must return or throw Error; a crash fails the whole test binary
  }
  std::string random(5000, '\0');
  for (auto& c : random) c = static_cast<char>(byte(rng));
  write_with_matching_hash(random);
  EXPECT_FALSE(loads());
}

TEST_F(ModelFiles, BrokenSidecarsAreRefused) {
  const auto base = nlohmann::json::parse(sidecar);
  std::vector<std::function<void(nlohmann::json&)>> breakages = {
      [](auto& j) { j.erase("classes"); },
      [](auto& j) { j["classes"] = {"only_one"}; },
      [](auto& j) {
        j["classes"] = {"a", "b", "c"};
      },  // model has 2 outputs
      [](auto& j) {
        j["classes"] = {1, 2};
      },
      [](auto& j) { j["input"]["width"] = 100; },
      [](auto& j) { j["input"]["color"] = "BGR"; },
      [](auto& j) { j["input"] = "224"; },
      [](auto& j) { j["format"] = "something-else"; },
      [](auto& j) { j["format_version"] = 99; },
      [](auto& j) { j.erase("onnx_sha256"); },
      [](auto& j) { j = nlohmann::json::array(); },
      [](auto& j) { j["input"]["scale"] = "x"; },  // a field of the wrong type: Error, not json::type_error
  };
  for (size_t i = 0; i < breakages.size(); ++i) {
    auto j = base;
    breakages[i](j);
    write_bytes(dir / "model.json", j.dump());
    EXPECT_FALSE(loads()) << "breakage " << i;
  }
  std::mt19937 rng(5);
  for (size_t n : truncation_points(sidecar.size() - 1, rng, 10)) {  // -1: dropping only the final newline is harmless
    write_bytes(dir / "model.json", sidecar.substr(0, n));
    EXPECT_FALSE(loads()) << "sidecar truncated to " << n;
  }
}

TEST(BadInputCli, BadFilesGiveOneLineAndExitCode1) {
  TempDir dir;
  std::string random(100000, '\0');
  std::mt19937 rng(6);
  for (auto& c : random) c = static_cast<char>(rng());
  write_bytes(dir / "random.tflite", random);
  write_bytes(dir / "empty.tflite", "");
  const auto image = shared_path("samples/imagenet/cat.bmp").string();
  for (const auto& file : {dir / "random.tflite", dir / "empty.tflite", dir / "missing.tflite"}) {
    const auto r = run_cli({"imagenet", "--backbone", file.string(), image});
    EXPECT_EQ(r.exit_code, 1) << file << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find("error"), std::string::npos);
  }
  const auto bad_image =
      run_cli({"imagenet", "--backbone", asset(kQuantBackbone).string(), (dir / "random.tflite").string()});
  EXPECT_EQ(bad_image.exit_code, 1) << bad_image.err;
  // A missing model names the model, not "model sidecar not found: <its name>.json".
  const auto no_model = run_cli({"detect", image, "--model", (dir / "nomodel.onnx").string()});
  EXPECT_EQ(no_model.exit_code, 1);
  EXPECT_NE(no_model.err.find("model not found: " + (dir / "nomodel.onnx").string()), std::string::npos)
      << no_model.err;
  // No image it was given could be read: exit 1, and an earlier --json stays (it became []).
  write_bytes(dir / "zero.jpg", "");
  write_bytes(dir / "keep.json", "[{\"image\": \"earlier\"}]");
  const auto unread = run_cli({"detect", (dir / "zero.jpg").string(), "--json", (dir / "keep.json").string()});
  EXPECT_EQ(unread.exit_code, 1) << unread.err;
  EXPECT_NE(unread.err.find("none of the 1 image(s) could be read"), std::string::npos) << unread.err;
  EXPECT_EQ(read_bytes(dir / "keep.json"), "[{\"image\": \"earlier\"}]");
  // Results that could not be written to standard output (a full disk) are a failure, not exit 0.
  const std::string face = shared_path("data/seed-masks/with_mask/0-with-mask.jpg").string();
  const int full = std::system(("'" MASKWATCH_TEST_BINARY "' detect '" + face + "' > /dev/full 2> '" +
                                (dir / "full.err").string() + "'")
                                   .c_str());
  EXPECT_EQ(WIFEXITED(full) ? WEXITSTATUS(full) : -1, 1);
  EXPECT_NE(read_bytes(dir / "full.err").find("could not be written to standard output: No space left on device"),
            std::string::npos)
      << read_bytes(dir / "full.err");
}

TEST(BadInputCli, AnEmptyZoomRangeForTrainFacesIsRefusedBeforeAnyWork) {
  TempDir dir;
  const auto r = run_cli({"train-faces", "--scenes", shared_path("data/scenes-dev").string(), "--out",
                          (dir / "tuned.onnx").string(), "--zoom", "1.5", "0.8"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("--zoom 1.5 0.8"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "tuned.onnx"));
}

// From a hostile-user review of the training commands (2026-12-05).
TEST(BadInputCli, TrainingOptionsOutOfRangeAreRefusedBeforeAnyWork) {
  TempDir dir;
  const auto data = shared_path("data/seed-masks").string(), out = (dir / "run").string();
  for (const auto& [option, value] : std::vector<std::pair<std::string, std::string>>{
           {"--lr", "nan"}, {"--fine-tune-lr", "inf"}, {"--rotation", "nan"}, {"--zoom", "5"}, {"--shift", "10"},
           {"--shear", "nan"}, {"--rotation", "-50"}, {"--seed", "-1"}, {"--limit-per-class", "0"},
           {"--patience", "-3"}, {"--no-augment", "--rotation=90"}, {"--no-camera-effects", "--dim-p=0.2"}}) {
    const auto r = run_cli({"train", "--data", data, "--out", out, option, value});
    EXPECT_EQ(r.exit_code, 2) << option << " " << value << ": " << r.err;
  }
  const auto zero = run_cli({"train", "--data", data, "--out", out, "--source-weight", "seed-masks=0"});
  EXPECT_EQ(zero.exit_code, 2) << zero.err;  // a usage error since 2026-12-07 (it was 1)
  EXPECT_NE(zero.err.find("seed-masks=0: the weight must be a number above 0"), std::string::npos) << zero.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "run" / "split.json"));
  // Found after the whole training before.
  const auto baseline =
      run_cli({"train", "--data", data, "--out", out, "--baseline-model", (dir / "no-such.onnx").string()});
  EXPECT_EQ(baseline.exit_code, 1) << baseline.err;
  EXPECT_NE(baseline.err.find("no-such.onnx: no such file"), std::string::npos) << baseline.err;
  write_bytes(dir / "junk.onnx", std::string(4096, 'x'));
  const auto junk = run_cli({"train", "--data", data, "--out", out, "--baseline-model", (dir / "junk.onnx").string()});
  EXPECT_EQ(junk.exit_code, 1) << junk.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "run" / "metrics.json")) << "refused only after training";
  EXPECT_EQ(run_cli({"bench", "--sizes", "100"}).exit_code, 2);
}

TEST(BadInputCli, TrainingNeverWritesIntoItsDataNorLosesARunToAMistypedForce) {
  TempDir dir;
  const auto data = shared_path("data/seed-masks");
  // Plots written into a class folder were read as images of that class by the next run.
  for (const char* cmd : {"train", "audit"}) {
    const auto r = run_cli({cmd, "--data", data.string(), "--out", (data / "with_mask" / "run").string()});
    EXPECT_EQ(r.exit_code, 1) << cmd << ": " << r.err;
    EXPECT_NE(r.err.find("inside the data folder"), std::string::npos) << r.err;
  }
  EXPECT_FALSE(std::filesystem::exists(data / "with_mask" / "run"));
  // --force with a data folder that does not exist: the previous run is still there.
  const auto run = dir / "run";
  std::filesystem::create_directories(run);
  for (const char* f : {"checkpoint.pt", "best.pt", "metrics.json", "split.json", "model.onnx", "model.json"})
    write_bytes(run / f, "previous run");
  const auto r = run_cli({"train", "--data", (dir / "no-such-data").string(), "--out", run.string(), "--force"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  for (const char* f : {"checkpoint.pt", "best.pt", "metrics.json", "split.json", "model.onnx", "model.json"})
    EXPECT_TRUE(std::filesystem::exists(run / f)) << f << " was removed before the new run's data was found";
}

TEST(BadInputCli, TrainingNamesOneImageFiledUnderTwoClasses) {
  TempDir dir;
  const auto seed = shared_path("data/seed-masks");
  for (const char* cls : {"with_mask", "without_mask"}) {
    std::filesystem::create_directories(dir / "data" / cls);
    int n = 0;
    for (const auto& f : list_image_files(seed / cls))
      if (n++ < 10) std::filesystem::copy_file(f, dir / "data" / cls / f.filename());
  }
  const auto twice = list_image_files(seed / "with_mask").front();
  std::filesystem::copy_file(twice, dir / "data/without_mask/copy.jpg");
  const auto r = run_cli({"train", "--data", (dir / "data").string(), "--out", (dir / "run").string(), "--epochs",
                          "1", "--fine-tune-epochs", "0", "--input-size", "96", "--no-quality-gate"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("1 image(s) are byte for byte another image of another class"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("without_mask/copy.jpg"), std::string::npos) << r.err;
}

TEST(BadInputCli, TrainingSaysWhenAClassHasNoTestImage) {
  // "balanced 100.00 %" over one class read as a perfect model.
  TempDir dir;
  const auto seed = shared_path("data/seed-masks");
  std::filesystem::create_directories(dir / "data/with_mask");
  std::filesystem::create_directories(dir / "data/without_mask");
  const auto with = list_image_files(seed / "with_mask");
  for (size_t i = 0; i < 20; ++i) std::filesystem::copy_file(with[i], dir / "data/with_mask" / with[i].filename());
  const auto one = list_image_files(seed / "without_mask").front();
  std::filesystem::copy_file(one, dir / "data/without_mask" / one.filename());
  const auto r = run_cli({"train", "--data", (dir / "data").string(), "--out", (dir / "run").string(), "--epochs",
                          "1", "--fine-tune-epochs", "0", "--input-size", "96", "--no-quality-gate"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("the test split holds no without_mask image"), std::string::npos) << r.err;
}

TEST(BadInputCli, TrainFacesAndImagenetRefuseInputsThatWouldGiveAWrongResult) {
  TempDir dir;
  // --out over --base replaced the model it started from.
  std::filesystem::copy_file(asset("yunet_n_320_320.onnx"), dir / "base.onnx");
  const auto before = read_file_bytes(dir / "base.onnx");
  const auto same = run_cli({"train-faces", "--scenes", shared_path("data/scenes-dev").string(), "--base",
                             (dir / "base.onnx").string(), "--out", (dir / "base.onnx").string()});
  EXPECT_EQ(same.exit_code, 1) << same.err;
  EXPECT_EQ(read_file_bytes(dir / "base.onnx"), before);
  // Scenes without one labelled face trained a model and said nothing.
  std::filesystem::create_directories(dir / "voc" / "annotations");
  std::filesystem::create_directories(dir / "voc" / "images");
  cv::imwrite((dir / "voc/images/a.png").string(), cv::Mat(240, 320, CV_8UC3, cv::Scalar(90, 120, 150)));
  write_bytes(dir / "voc/annotations/a.xml",
              "<annotation><filename>a.png</filename><size><width>320</width><height>240</height></size></annotation>");
  const auto empty = run_cli({"train-faces", "--scenes", (dir / "voc").string(), "--hold-out", "none", "--out",
                              (dir / "tuned.onnx").string(), "--epochs", "1"});
  EXPECT_EQ(empty.exit_code, 1) << empty.err;
  EXPECT_NE(empty.err.find("labelled face"), std::string::npos) << empty.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "tuned.onnx"));
  // --out over the split, a scene's annotation or a mask classifier was written, exit 0; a box
  // file whose <size> is not its image's was trained on; the 2022 model failed on a missing node.
  write_bytes(dir / "split.json", "{}");
  std::filesystem::copy_file(default_model_path().parent_path() / "model.onnx", dir / "mask.onnx",
                             std::filesystem::copy_options::overwrite_existing);
  const auto classifier = read_file_bytes(dir / "mask.onnx");
  const std::vector<std::pair<std::string, std::string>> outs = {
      {(dir / "split.json").string(), "a face model is an .onnx file"},
      {(dir / "voc/annotations/a.onnx").string(), "is inside the data folder"},
      {(dir / "mask.onnx").string(), "exists and is not a 2023 YuNet face model: not overwritten"}};
  for (const auto& [out, says] : outs) {
    const auto r = run_cli({"train-faces", "--scenes", (dir / "voc").string(), "--split", (dir / "split.json").string(),
                            "--out", out, "--epochs", "1"});
    EXPECT_EQ(r.exit_code, 1) << out << ": " << r.err;
    EXPECT_NE(r.err.find(says), std::string::npos) << out << ": " << r.err;
  }
  EXPECT_EQ(read_file_text(dir / "split.json"), "{}");
  EXPECT_EQ(read_file_bytes(dir / "mask.onnx"), classifier);
  const auto old_base = run_cli({"train-faces", "--scenes", (dir / "voc").string(), "--base", "yunet-2022", "--out",
                                 (dir / "tuned.onnx").string()});
  EXPECT_NE(old_base.err.find("is not a 2023 YuNet model"), std::string::npos) << old_base.err;
  write_bytes(dir / "voc/annotations/a.xml",
              "<annotation><filename>a.png</filename><size><width>640</width><height>480</height></size><object>"
              "<name>with_mask</name><bndbox><xmin>400</xmin><ymin>300</ymin><xmax>500</xmax><ymax>420</ymax>"
              "</bndbox></object></annotation>");
  const auto resized = run_cli({"train-faces", "--scenes", (dir / "voc").string(), "--out",
                                (dir / "tuned.onnx").string(), "--epochs", "1"});
  EXPECT_EQ(resized.exit_code, 1) << resized.err;
  EXPECT_NE(resized.err.find("says the image is 640x480, but"), std::string::npos) << resized.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "tuned.onnx"));
  // The common 1,000-line label file (no "background") named every class one off.
  const auto labels = read_file_text(asset(kImagenetLabels));
  write_bytes(dir / "labels.txt", labels.substr(labels.find('\n') + 1));
  const auto shifted =
      run_cli({"imagenet", "--labels", (dir / "labels.txt").string(), shared_path("samples/imagenet/cat.bmp").string()});
  EXPECT_EQ(shifted.exit_code, 1) << shifted.err;
  EXPECT_NE(shifted.err.find("background"), std::string::npos) << shifted.err;
  // --json over an image it classifies replaced the image (exit 0).
  std::filesystem::copy_file(shared_path("samples/imagenet/cat.bmp"), dir / "cat.bmp");
  const auto cat = read_file_bytes(dir / "cat.bmp");
  const auto over = run_cli({"imagenet", (dir / "cat.bmp").string(), "--json", (dir / "cat.bmp").string()});
  EXPECT_EQ(over.exit_code, 1) << over.err;
  EXPECT_NE(over.err.find("would destroy the input"), std::string::npos) << over.err;
  EXPECT_EQ(read_file_bytes(dir / "cat.bmp"), cat);
  // One unreadable image lost the others' answers (exit 1, no JSON): now it is skipped.
  write_bytes(dir / "notes.txt", "not an image\n");
  const auto mixed = run_cli({"imagenet", (dir / "notes.txt").string(), (dir / "cat.bmp").string(), "--top", "1",
                              "--json", (dir / "top.json").string()});
  ASSERT_EQ(mixed.exit_code, 0) << mixed.err;
  EXPECT_NE(mixed.err.find("notes.txt"), std::string::npos) << mixed.err;
  const auto top = read_json(dir / "top.json");
  ASSERT_EQ(top.size(), 1u);
  EXPECT_EQ(top[0]["top5"][0]["label"], "Egyptian cat");
  EXPECT_EQ(run_cli({"imagenet", (dir / "notes.txt").string()}).exit_code, 1);
}

TEST(BadInputCli, NotANumberIsRefusedByEveryRangeCheck) {
  // CLI11's Range lets NaN through (it fails both comparisons); in_range does not.
  const auto image = shared_path("samples/imagenet/cat.bmp").string();
  const auto clip = shared_path("samples/video/webcam-mask-on-off.mp4").string();
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"detect", image, "--face-threshold", "nan"},
           {"detect", image, "--margin", "NaN"},
           {"detect", image, "--margin", "inf"},
           {"detect", image, "--margin", ""},
           {"run", "--source", clip, "--no-display", "--reclassify-after", "nan"},
           {"eval", "--scenes", "x", "--face-nms", "nan"}}) {
    const auto r = run_cli(args);
    EXPECT_EQ(r.exit_code, 2) << args[0] << " " << args.back() << ": " << r.err;
    EXPECT_TRUE(r.err.find("not a finite number") != std::string::npos ||
                r.err.find("empty value is not a number") != std::string::npos)
        << r.err;
  }
  // A value that is no number, or no whole number, was said to be "not in range 64 to 4096".
  for (const auto& [value, says] : std::vector<std::pair<std::string, std::string>>{
           {"1e3", "Value 1e3 is not a whole number"},
           {"65.5", "Value 65.5 is not a whole number"},
           {"400px", "Value 400px is not a number"},
           {"0400", "Value 0400 has a leading zero: write it without"},  // CLI11 read it as octal 256
           {"5000", "Value 5000 not in range 64 to 4096"}}) {
    const auto r = run_cli({"detect", image, "--detect-width", value});
    EXPECT_EQ(r.exit_code, 2) << value << ": " << r.err;
    EXPECT_NE(r.err.find(says), std::string::npos) << r.err;
  }
}

TEST(BadInputCli, AnEmptyValueIsRefusedNotReadAsTheDefault) {
  // `--data ''` served from the config's folder, `--json ''` wrote no JSON, both silently.
  const auto image = shared_path("samples/imagenet/cat.bmp").string();
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"serve", "--config", "x.yaml", "--data", ""},
           {"detect", image, "--json", ""},
           {"detect", ""},
           {"eval", "--data", shared_path("data/seed-masks").string(), "--exclude", ""},
           {"train", "--out", ""}}) {
    const auto r = run_cli(args);
    EXPECT_EQ(r.exit_code, 2) << args[0] << " " << args[args.size() - 2] << ": " << r.err;
    EXPECT_NE(r.err.find("an empty value"), std::string::npos) << r.err;
  }
}

TEST(BadInputCli, EvalRefusesOptionsItWouldIgnore) {
  const auto data = shared_path("data/seed-masks").string();
  for (const auto& args : std::vector<std::vector<std::string>>{{"eval", "--data", data, "--classes", "with_mask"},
                                                                {"eval", "--data", data, "--fit-boxes"},
                                                                {"eval", "--data", data, "--subset", "val"},
                                                                {"eval", "--scenes", "x", "--classes", "with_mask",
                                                                 "with_mask"},
                                                                {"eval", "--scenes", "x", "--split", "s.json",
                                                                 "--subset", "val"},
                                                                {"eval", "--scenes", "x", "--exclude", "e.txt"},
                                                                {"eval", "--scenes", "x", "--no-face-crops"},
                                                                {"eval", "--data", data, "--gate-target", "0.9"}}) {
    const auto r = run_cli(args);
    EXPECT_EQ(r.exit_code, 2) << args[3] << ": " << r.err;
  }
}

// eval decodes its images in chunks of 256; a chunk whose images of one class were all broken
// threw away its good images of the other class too, uncounted (a structure review found it).
TEST(BadInputCli, EvalSkipsBrokenImagesAndScoresTheRestOfTheirChunk) {
  TempDir dir;
  const auto data = dir / "data";
  const auto copy_some = [&](const char* c, int n) {
    fs::create_directories(data / c);
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(shared_path("data/seed-masks") / c)) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (int i = 0; i < n; ++i) fs::copy_file(files[static_cast<size_t>(i)], data / c / files[static_cast<size_t>(i)].filename());
  };
  copy_some("with_mask", 255);
  copy_some("without_mask", 3);
  // Items 255 and 256: the second chunk starts with a broken masked image, then the 3 bare faces.
  write_bytes(data / "with_mask" / "zz-broken-1.jpg", "not a picture");
  write_bytes(data / "with_mask" / "zz-broken-2.jpg", "not a picture either");
  const auto r = run_cli({"eval", "--model", default_model_path().string(), "--data", data.string(),
                          "--no-face-crops"},
                         300);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("n 255\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("n 3\n"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("zz-broken-2.jpg"), std::string::npos) << r.err;
}

// The report and the sheets never land on or among what eval reads (a hostile-user review found
// --json over a data image, --out in a class folder deleting and adding PNGs there, and --json
// over the exclusions or an annotation, each with exit code 0), and options that would score
// nothing or fit a gate on part of the validation split are refused, each before any work.
TEST(BadInputCli, EvalNeverWritesOverWhatItReadsNorScoresNothing) {
  TempDir dir;
  const auto data = dir / "data";
  for (const char* c : {"with_mask", "without_mask"}) {
    fs::create_directories(data / c);
    for (const auto& e : fs::directory_iterator(shared_path("data/seed-masks") / c)) {
      fs::copy_file(e.path(), data / c / e.path().filename());
      if (std::distance(fs::directory_iterator(data / c), fs::directory_iterator()) >= 2) break;
    }
  }
  const auto image = fs::directory_iterator(data / "with_mask")->path();
  const std::string image_bytes = read_bytes(image);
  write_bytes(dir / "ex.txt", "# none\n");
  const std::string model = default_model_path().string();
  const auto eval = [&](std::vector<std::string> extra) {
    std::vector<std::string> args{"eval", "--model", model, "--data", data.string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_cli(args, 120);
  };
  const auto refused = [](const CliResult& r, const std::string& says) {
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find(says), std::string::npos) << r.err;
  };
  refused(eval({"--json", image.string()}), "is inside the data folder");
  EXPECT_EQ(read_bytes(image), image_bytes);
  refused(eval({"--json", (data / "with_mask" / "report.png").string()}), "is inside the data folder");
  refused(eval({"--out", (data / "with_mask").string()}), "is inside the data folder");
  EXPECT_FALSE(fs::exists(data / "with_mask" / "confusion.png"));
  refused(eval({"--exclude", (dir / "ex.txt").string(), "--json", (dir / "ex.txt").string()}),
          "would destroy the input");
  EXPECT_EQ(read_bytes(dir / "ex.txt"), "# none\n");
  refused(eval({"--out", (dir / "o").string(), "--json", (dir / "o" / "reliability.png").string()}),
          "are the same file");
  refused(eval({"--map", "with_mask=without_mask"}), "nothing is left to tell apart");
  // One class only: the other's rates have nothing to count and read n/a (they read 0.00 %).
  fs::create_directories(dir / "masked" / "with_mask");
  fs::copy_file(image, dir / "masked" / "with_mask" / image.filename());
  const auto one_class = run_cli({"eval", "--model", model, "--data", (dir / "masked").string()}, 120);
  ASSERT_EQ(one_class.exit_code, 0) << one_class.err;
  EXPECT_NE(one_class.out.find("recall 100.00%  f1 1.0000  n 1"), std::string::npos) << one_class.out;
  EXPECT_NE(one_class.out.find("without_mask           precision    n/a   recall    n/a   f1 n/a  n 0"),
            std::string::npos)
      << one_class.out;
  // --fit-gate writes into model.json: not from a few of the validation split's images.
  fs::copy_file(model, dir / "model.onnx");
  fs::copy_file(sidecar_path(model), dir / "model.json");
  const std::string sidecar = read_bytes(dir / "model.json");
  const auto partial = run_cli({"eval", "--conditions", "--fit-gate", "--model", (dir / "model.onnx").string(),
                                "--data", shared_path("data/seed-masks").string(), "--split",
                                (default_model_path().parent_path() / "split.json").string(), "--subset", "val"},
                               120);
  refused(partial, "from the data folder 'real-masks' are evaluated");
  EXPECT_EQ(read_bytes(dir / "model.json"), sidecar);
  // Scenes: a label --map names must be one the annotations use (in any spelling they use).
  const auto scenes = dir / "scenes";
  fs::create_directories(scenes / "annotations");
  fs::create_directories(scenes / "images");
  const auto voc = shared_path("data/scenes-dev");
  // A scene with a chin mask, whose label is spelled mask_weared_incorrect.
  const std::string stem = "00a289ede2a678155d3d0bd19853899a";
  fs::copy_file(voc / "annotations" / (stem + ".xml"), scenes / "annotations" / (stem + ".xml"));
  for (const auto& e : fs::directory_iterator(voc / "images"))
    if (e.path().stem() == stem) fs::copy_file(e.path(), scenes / "images" / e.path().filename());
  const auto scene_eval = [&](std::vector<std::string> extra) {
    std::vector<std::string> args{"eval", "--model", model, "--scenes", scenes.string(), "--single-look"};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_cli(args, 120);
  };
  refused(scene_eval({"--map", "foo=without_mask"}), "no box in");
  refused(scene_eval({"--map", "mask_weared_incorrect=withou_mask"}), "is not a class evaluated here");
  refused(scene_eval({"--map", "mask_weared_incorrect=with_mask", "--map", "mask_worn_incorrectly=without_mask"}),
          "is mapped to");
  refused(scene_eval({"--json", (scenes / "annotations" / "r.xml").string()}), "is inside the data folder");
  const auto weared = scene_eval({"--map", "mask_weared_incorrect=without_mask"});
  EXPECT_EQ(weared.exit_code, 0) << weared.err;
  // --fit-boxes on one scene has nothing to fit: it said "fitted" and printed the identity's zeros.
  const auto fitted = scene_eval({"--fit-boxes"});
  EXPECT_EQ(fitted.exit_code, 0) << fitted.err;
  EXPECT_NE(fitted.out.find("box correction: none fitted: "), std::string::npos) << fitted.out;
  EXPECT_EQ(fitted.out.find("box correction fitted on"), std::string::npos) << fitted.out;
}

// bench's --json was checked only when the tables were done (minutes later) and could replace the
// model it timed.
TEST(BadInputCli, BenchChecksItsJsonBeforeItStarts) {
  TempDir dir;
  const std::string model = default_model_path().string();
  fs::copy_file(model, dir / "model.onnx");
  fs::copy_file(sidecar_path(model), dir / "model.json");
  const std::string sidecar = read_bytes(dir / "model.json");
  const auto bench = [&](const fs::path& json) {
    return run_cli({"bench", "--no-classifier", "--no-pipeline", "--model", (dir / "model.onnx").string(), "--json",
                    json.string()},
                   60);
  };
  const auto over_model = bench(dir / "model.json");
  EXPECT_EQ(over_model.exit_code, 1) << over_model.err;
  EXPECT_NE(over_model.err.find("would destroy the input"), std::string::npos) << over_model.err;
  EXPECT_EQ(read_bytes(dir / "model.json"), sidecar);
  const auto folder = bench(dir.path);
  EXPECT_EQ(folder.exit_code, 1) << folder.err;
  EXPECT_EQ(folder.out.find("maskwatch bench on"), std::string::npos) << "started before refusing: " << folder.out;
  const auto fine = bench(dir / "b.json");
  EXPECT_EQ(fine.exit_code, 0) << fine.err;
  EXPECT_TRUE(fs::exists(dir / "b.json"));
}

TEST(BadInputCli, ConfigCheckLoadsTheModelsServeWouldLoad) {
  // A model file that exists but does not load passed `config check` (the service's pre-start
  // check) and then failed `serve`, in a restart loop.
  TempDir dir;
  write_bytes(dir / "junk.onnx", std::string(4096, 'x'));
  const std::string clip = shared_path("samples/video/webcam-mask-on-off.mp4").string();
  write_bytes(dir / "model.yaml", "model: " + (dir / "junk.onnx").string() + "\ncameras: {a: {source: " + clip + "}}\n");
  write_bytes(dir / "faces.yaml",
              "detector: {face_model: " + (dir / "junk.onnx").string() + "}\ncameras: {a: {source: " + clip + "}}\n");
  write_bytes(dir / "good.yaml", "cameras: {a: {source: " + clip + "}}\n");
  for (const char* bad : {"model.yaml", "faces.yaml"}) {
    const auto r = run_cli({"config", "check", (dir / bad).string()});
    EXPECT_EQ(r.exit_code, 1) << bad << ": " << r.err;
  }
  const auto good = run_cli({"config", "check", (dir / "good.yaml").string()});
  EXPECT_EQ(good.exit_code, 0) << good.err;
  // A model file that is not there is named with its line, as every other config error is.
  write_bytes(dir / "gone.yaml",
              "# a site\nmodel: " + (dir / "gone.onnx").string() + "\ncameras: {a: {source: " + clip + "}}\n");
  const auto gone = run_cli({"config", "check", (dir / "gone.yaml").string()});
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_NE(gone.err.find((dir / "gone.yaml").string() + ":2: model " + (dir / "gone.onnx").string() + " not found"),
            std::string::npos)
      << gone.err;
}

TEST(BadInputCli, ServeListenSpellingsAreParsedOrRefusedBeforeStarting) {
  TempDir dir;
  write_bytes(dir / "c.yaml",
              "cameras: {a: {source: " + shared_path("samples/video/webcam-mask-on-off.mp4").string() + "}}\n");
  const auto serve = [&](const std::vector<std::string>& extra) {
    std::vector<std::string> args{"serve", "--config", (dir / "c.yaml").string(), "--data", (dir / "d").string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_cli(args, 60);
  };
  const auto both = serve({"--listen", "127.0.0.1:0", "--port", "5"});
  EXPECT_EQ(both.exit_code, 1);
  EXPECT_NE(both.err.find("both give a port"), std::string::npos) << both.err;
  const auto unclosed = serve({"--listen", "[::1:0"});
  EXPECT_EQ(unclosed.exit_code, 1);
  EXPECT_NE(unclosed.err.find("[IPV6]:PORT"), std::string::npos) << unclosed.err;
}

TEST(BadInputCli, UsageErrorsGiveExitCode2) {
  EXPECT_EQ(run_cli({"imagenet"}).exit_code, 2);
  const auto unknown = run_cli({"no-such-command"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.err.find("unknown command 'no-such-command'"), std::string::npos) << unknown.err;
  EXPECT_EQ(run_cli({}).exit_code, 2);
  const auto help = run_cli({"imagenet", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--backbone"), std::string::npos);
  // Values refused by their own parsers are usage errors too, before any work (they were exit 1,
  // some after the data had loaded).
  TempDir dir;
  const std::string data = shared_path("data/seed-masks").string(), never = (dir / "never").string(),
                    model = default_model_path().string();
  for (const auto& [args, said] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"eval", "--data", data, "--map", "foo"}, "'foo': expected FROM=TO"},
           {{"ensemble", model, model, "--out", (dir / "e.json").string(), "--cascade", "0.3"}, "above 0.5"},
           {{"train", "--data", data, "--out", never, "--input-size", "100"}, "multiple of 32"},
           {{"audit", "--data", data, "--out", never, "--input-size", "100"}, "multiple of 32"},
           {{"train", "--data", data, "--out", never, "--fine-tune-from-block", "99"}, "0 to 16"},
           {{"train", "--data", data, "--out", never, "--source-weight", "x=-1"}, "a number above 0"},
           {{"train", "--data", data, "--out", never, "--source-weight", "x=2", "--source-weight", "x=3"},
            "already has the weight 2"},
           {{"train", "--data", data, "--out", never, "--val-fraction", "0.5", "--test-fraction", "0.5"},
            "leave no image for training"}}) {
    const auto r = run_cli(args);
    EXPECT_EQ(r.exit_code, 2) << args[0] << " " << said << ": " << r.err;
    EXPECT_NE(r.err.find(said), std::string::npos) << r.err;
  }
  EXPECT_FALSE(fs::exists(never));
  EXPECT_FALSE(fs::exists(dir / "e.json"));
  // Said once, as the first check that fails says it (two checks joined by `&` said both).
  EXPECT_EQ(run_cli({"ensemble", model, model, "--out", (dir / "e.json").string(), "--cascade", "nan"}).err,
            "maskwatch: usage error: --cascade: Value nan is not a finite number (see --help)\n");
}
