// The runtime/training split: `maskwatch` must not load LibTorch, and still runs the
// training commands (by handing them to `maskwatch-train`).
#include <gtest/gtest.h>

#include <filesystem>
#include <fmt/format.h>
#include <fstream>

#include "model/model_meta.h"
#include "vision/face_stage_settings.h"
#include "support.h"
#include "util/json_io.h"
#include "util/paths.h"
#include "util/subprocess.h"

using namespace maskwatch;
using namespace maskwatch::test;

TEST(RuntimeExecutable, HasNoLibTorchInItsDynamicDependencies) {
  const auto ldd = run_process({"/usr/bin/ldd", MASKWATCH_TEST_BINARY});
  ASSERT_EQ(ldd.exit_code, 0);
  EXPECT_NE(ldd.out.find("libopencv_dnn"), std::string::npos) << ldd.out;  // the listing is real
  EXPECT_EQ(ldd.out.find("torch"), std::string::npos) << ldd.out;
  EXPECT_EQ(ldd.out.find("libc10"), std::string::npos) << ldd.out;
  // The training executable is the one that has it.
  const auto train = run_process({"/usr/bin/ldd", MASKWATCH_TEST_TRAIN_BINARY});
  EXPECT_NE(train.out.find("libtorch"), std::string::npos);
}

// OpenCV's imgcodecs, videoio and highgui load GDAL, GStreamer, Qt... (about 50 MiB resident):
// the runtime reads images and video with libjpeg/libpng/FFmpeg and loads the window plugin
// only when a window opens.
TEST(RuntimeExecutable, LoadsNeitherOpenCvCodecsNorVideoioNorHighgui) {
  const auto ldd = run_process({"/usr/bin/ldd", MASKWATCH_TEST_BINARY});
  ASSERT_EQ(ldd.exit_code, 0);
  EXPECT_NE(ldd.out.find("libavcodec"), std::string::npos) << ldd.out;
  for (const char* lib : {"libopencv_imgcodecs", "libopencv_videoio", "libopencv_highgui", "libgdal", "libQt5",
                          "libgstreamer", "libavdevice"})
    EXPECT_EQ(ldd.out.find(lib), std::string::npos) << lib << " in\n" << ldd.out;
  // The window plugin beside it is the one that has highgui.
  const auto plugin = fs::path(MASKWATCH_TEST_BINARY).parent_path() / "libmaskwatch_display.so";
  const auto plugin_ldd = run_process({"/usr/bin/ldd", plugin.string()});
  EXPECT_NE(plugin_ldd.out.find("libopencv_highgui"), std::string::npos) << plugin_ldd.out;
}

TEST(RuntimeExecutable, HandsTrainingCommandsToTheTrainingExecutable) {
  const auto r = run_cli({"train", "--help"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("--fine-tune-epochs"), std::string::npos) << r.out;
  const auto bad = run_cli({"train", "--no-such-flag"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("usage error"), std::string::npos) << bad.err;
  const auto help = run_cli({"--help"});
  EXPECT_NE(help.out.find("train"), std::string::npos);
  EXPECT_NE(help.out.find("detect"), std::string::npos);
  // --help-all cannot list the training commands' options (the other executable has them):
  // each says where they are instead of looking like a command without options.
  const auto all = run_cli({"--help-all"});
  EXPECT_EQ(all.exit_code, 0) << all.err;
  for (const char* name : {"train", "train-faces", "audit", "imagenet", "bench"})
    EXPECT_NE(all.out.find(fmt::format("(options: maskwatch {} --help)", name)), std::string::npos) << name;
}

TEST(RuntimeExecutable, VersionNamesTheReleaseTheCommitAndTheModel) {
  const auto r = run_cli({"--version"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("maskwatch 0.1.0 (git ", 0), 0u) << r.out;
  EXPECT_EQ(r.out.find("(git unknown)"), std::string::npos) << r.out;  // built from a checkout
  // The shipped model's sha256, as its sidecar records it.
  const auto sha = read_json(sidecar_path(default_model_path()))["onnx_sha256"].get<std::string>();
  ASSERT_EQ(sha.size(), 64u);
  EXPECT_NE(r.out.find("sha256 " + sha), std::string::npos) << r.out;
  // It is one of the ensemble every command uses, named with its cascade and its other members.
  EXPECT_NE(r.out.find("\nmodel " + (shipped_models_dir() / "ensemble.json").string() +
                       ": ensemble of 4; the first alone where its top probability >= 0.995: model.onnx (sha256 " +
                       sha + "), model-2.onnx (sha256 "),
            std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.find("(missing)"), std::string::npos) << r.out;

  // The ensemble's file without its members beside it: --version says each is missing; a member
  // file there without its sidecar (every command refuses it): it says so.
  TempDir d;
  std::filesystem::copy_file(shipped_models_dir() / "ensemble.json", d / "ensemble.json");
  const auto version_of_copy = [&] {
    setenv("MASKWATCH_MODEL", (d / "ensemble.json").c_str(), 1);
    const auto v = run_cli({"--version"});
    unsetenv("MASKWATCH_MODEL");
    EXPECT_EQ(v.exit_code, 0) << v.err;
    return v.out;
  };
  const std::string member4 =
      "model-4.onnx (sha256 " + read_json(shipped_models_dir() / "model-4.json")["onnx_sha256"].get<std::string>() + ")";
  const auto lost = version_of_copy();
  EXPECT_NE(lost.find(member4 + " (missing)"), std::string::npos) << lost;
  std::filesystem::copy_file(shipped_models_dir() / "model-4.onnx", d / "model-4.onnx");
  const auto bare = version_of_copy();
  EXPECT_NE(bare.find(member4 + " (its model.json missing)"), std::string::npos) << bare;
}

// Config keys are declared once (serve/config.cpp): the README's table is that table, printed.
TEST(RuntimeExecutable, ReadmeConfigTableIsTheOneTheBinaryPrints) {
  const auto r = run_cli({"config", "keys", "--markdown"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("| `tracker.max_missed_s` | 0 .. 60 | `0.5` |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| `mqtt.password` |"), std::string::npos);
  std::ifstream in(std::filesystem::path(MASKWATCH_TEST_SOURCE_DIR) / "README.md");
  const std::string readme((std::istreambuf_iterator<char>(in)), {});
  const std::string open = "<!-- config-keys: maskwatch config keys --markdown -->\n", close = "<!-- /config-keys -->";
  const auto a = readme.find(open), b = readme.find(close);
  ASSERT_NE(a, std::string::npos);
  ASSERT_NE(b, std::string::npos);
  EXPECT_EQ(readme.substr(a + open.size(), b - a - open.size()), r.out)
      << "README's config table is stale: paste `maskwatch config keys --markdown` between the markers";
}

// Face-stage settings are declared once (vision/face_stage_settings.h): `run` refuses what
// `serve`'s config refuses, with the same bounds, and says which config key it is.
TEST(RuntimeExecutable, RunFlagsAndServeKeysShareTheirRanges) {
  for (const auto* spec : {&face_stage::kFaceThreshold, &face_stage::kDetectWidth, &face_stage::kMargin,
                           &face_stage::kReclassifyAfter}) {
    // "4097", not std::to_string's "4097.000000" (no whole number, said so since 2026-12-07)
    const auto r = run_cli({"run", spec->flag, fmt::format("{}", spec->hi + 1), "--source", "nothing-here.mp4"});
    EXPECT_NE(r.exit_code, 0) << spec->flag;
    EXPECT_NE(r.err.find("not in range"), std::string::npos) << spec->flag << ": " << r.err;
    const auto help = run_cli({"run", "--help"});
    EXPECT_NE(help.out.find(std::string("serve: detector.") + spec->key), std::string::npos) << spec->key;
  }
}
