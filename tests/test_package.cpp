// The Debian package (issue 21): built with cpack from this build, unpacked into a folder and
// run from there, as a site would after `apt install ./maskwatch_*.deb`.
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <httplib.h>

#include <csignal>
#include <fstream>
#include <regex>
#include <sstream>

#include "support.h"
#include "util/json_io.h"

using namespace maskwatch;
using namespace maskwatch::test;

namespace {

struct Ran {
  int code = -1;
  std::string out, err;
};

Ran run(const std::vector<std::string>& argv, double timeout_s = 120) {
  BackgroundProcess p(argv);
  Ran r;
  r.code = p.wait(timeout_s);
  r.out = p.out();
  r.err = p.err();
  return r;
}

// The line of `unit` that starts with key=, without the key.
std::string unit_value(const std::string& unit, const std::string& key) {
  std::istringstream in(unit);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(key + "=", 0) == 0) return line.substr(key.size() + 1);
  return {};
}

}  // namespace

TEST(Package, TheDebInstallsTheServiceAndRunsFromItsOwnFolders) {
  TempDir tmp;
  const auto made =
      run({"bash", (fs::path(MASKWATCH_TEST_SOURCE_DIR) / "scripts/package.sh").string(), (tmp / "out").string()}, 300);
  ASSERT_EQ(made.code, 0) << made.out << made.err;
  const fs::path deb = tmp / "out" / "maskwatch_0.1.0_amd64.deb";
  const fs::path display_deb = tmp / "out" / "maskwatch-display_0.1.0_amd64.deb";
  EXPECT_NE(made.out.find(deb.string()), std::string::npos) << made.out;
  EXPECT_NE(made.out.find(display_deb.string()), std::string::npos) << made.out;
  ASSERT_TRUE(fs::exists(deb) && fs::exists(display_deb)) << made.out;

  // Control fields: its name, and Depends computed from what the binary links. No GUI library:
  // run's window (highgui, Qt 5) is a package of its own that a headless site leaves out.
  const auto fields = run({"dpkg-deb", "-f", deb.string(), "Package", "Depends", "Recommends", "Suggests"});
  ASSERT_EQ(fields.code, 0) << fields.err;
  EXPECT_NE(fields.out.find("Package: maskwatch\n"), std::string::npos) << fields.out;
  for (const char* dep :
       {"libopencv-core406", "libopencv-dnn406", "libxnnpack0", "libavcodec59", "libsqlite3-0", "libpaho-mqtt1.3"})
    EXPECT_NE(fields.out.find(dep), std::string::npos) << dep << " missing from " << fields.out;
  for (const char* gui : {"libtorch", "highgui", "libqt5"})
    EXPECT_EQ(fields.out.find(gui), std::string::npos) << "the runtime needs no " << gui << ": " << fields.out;
  EXPECT_NE(fields.out.find("Recommends: libavdevice59"), std::string::npos) << fields.out;
  EXPECT_NE(fields.out.find("Suggests: maskwatch-display"), std::string::npos) << fields.out;
  const auto display_fields = run({"dpkg-deb", "-f", display_deb.string(), "Package", "Depends"});
  EXPECT_NE(display_fields.out.find("Package: maskwatch-display\n"), std::string::npos) << display_fields.out;
  EXPECT_NE(display_fields.out.find("maskwatch (= 0.1.0)"), std::string::npos) << display_fields.out;
  EXPECT_NE(display_fields.out.find("libopencv-highgui406"), std::string::npos) << display_fields.out;

  // The site's config is a conffile (an upgrade keeps its edits).
  ASSERT_EQ(run({"dpkg-deb", "-e", deb.string(), (tmp / "control").string()}).code, 0);
  EXPECT_EQ(read_bytes(tmp / "control" / "conffiles"), "/etc/maskwatch/config.yaml\n");

  const fs::path root = tmp / "root";
  ASSERT_EQ(run({"dpkg-deb", "-x", deb.string(), root.string()}).code, 0);
  for (const char* f :
       {"usr/bin/maskwatch", "usr/share/maskwatch/models/model.onnx", "usr/share/maskwatch/models/model.json",
        "usr/share/maskwatch/models/ensemble.json", "usr/share/maskwatch/models/model-4.onnx",
        "usr/share/maskwatch/models/yunet_n_scenes.onnx", "usr/share/maskwatch/assets/yunet_n_640_640.onnx",
        "usr/lib/systemd/system/maskwatch.service", "etc/maskwatch/config.yaml", "usr/share/doc/maskwatch/README.md"})
    EXPECT_TRUE(fs::exists(root / f)) << f;
  EXPECT_FALSE(fs::exists(root / "usr/bin/maskwatch-train"));                    // a site does not train
  EXPECT_FALSE(fs::exists(root / "usr/lib/maskwatch/libmaskwatch_display.so"));  // nor need a window
  // Every model file the package carries says where it comes from and under which licence.
  const std::string copyright = read_bytes(root / "usr/share/doc/maskwatch/copyright");
  int bundled = 0;
  for (const auto& entry : fs::recursive_directory_iterator(root / "usr/share/maskwatch")) {
    if (!entry.is_regular_file()) continue;
    ++bundled;
    const std::string path = fs::relative(entry.path(), root).string();
    const bool named = copyright.find("Files: " + path + "\n") != std::string::npos ||
                       copyright.find("       " + path + "\n") != std::string::npos;
    EXPECT_TRUE(named) << path << " has no stanza in the copyright file";
  }
  EXPECT_EQ(bundled, 14);
  const std::string bin = (root / "usr/bin/maskwatch").string();

  // The unpacked binary takes its model and detectors from ../share/maskwatch, not from the
  // source tree it was built in (nothing in the environment points anywhere).
  unsetenv("MASKWATCH_MODEL");
  unsetenv("MASKWATCH_ASSETS");
  const auto version = run({bin, "--version"});
  ASSERT_EQ(version.code, 0) << version.err;
  const std::string model_sha =
      run({"sha256sum", (root / "usr/share/maskwatch/models/model.onnx").string()}).out.substr(0, 64);
  // The ensemble every command uses, the unpacked model.onnx its first member.
  EXPECT_NE(version.out.find(
                "model " + (root / "usr/share/maskwatch/models/ensemble.json").string() +
                ": ensemble of 4; the first alone where its top probability >= 0.995: model.onnx (sha256 " + model_sha),
            std::string::npos)
      << version.out;
  // A site cannot train: --help does not offer the training commands and says where they went;
  // asking for one says what is missing.
  const auto help = run({bin, "--help"});
  ASSERT_EQ(help.code, 0) << help.err;
  EXPECT_NE(help.out.find("\n  serve "), std::string::npos) << help.out;
  for (const char* name : {"train", "train-faces", "audit", "imagenet", "bench"})
    EXPECT_EQ(help.out.find(fmt::format("\n  {} ", name)), std::string::npos) << name << " offered in\n" << help.out;
  EXPECT_NE(help.out.find("Training commands (train, train-faces, audit, imagenet, bench) are not in this install"),
            std::string::npos)
      << help.out;
  const auto train = run({bin, "train", "--help"});
  EXPECT_EQ(train.code, 1);
  EXPECT_NE(train.err.find("'train' needs the training executable"), std::string::npos) << train.err;
  const auto check = run({bin, "config", "check", (root / "etc/maskwatch/config.yaml").string()});
  ASSERT_EQ(check.code, 0) << check.err;
  EXPECT_NE(check.out.find("\"model\": \"" + (root / "usr/share/maskwatch/models/ensemble.json").string() + "\""),
            std::string::npos)
      << check.out;
  const auto image = shared_path("data/seed-masks/without_mask/0.jpg").string();
  const auto detected = run({bin, "detect", image, "--json", (tmp / "faces.json").string()});
  ASSERT_EQ(detected.code, 0) << detected.err;
  const auto faces = read_json(tmp / "faces.json");
  ASSERT_EQ(faces.size(), 1u);
  ASSERT_EQ(faces[0]["faces"].size(), 1u);
  EXPECT_EQ(faces[0]["faces"][0]["label"], "without_mask");
  EXPECT_EQ(detected.err.find("Haar"), std::string::npos) << "the packaged YuNet was not found: " << detected.err;

  // run's window: without maskwatch-display the run says which package it needs; with it
  // unpacked beside, the plugin is found in lib/maskwatch and gets as far as the display (no X
  // server answers on :97 here).
  const std::string clip = shared_path("samples/video/webcam-mask-on-off.mp4").string();
  const auto headless = run({"env", "DISPLAY=:97", bin, "run", "--source", clip, "--max-frames", "1"});
  EXPECT_EQ(headless.code, 1) << headless.err;
  EXPECT_NE(headless.err.find("libmaskwatch_display.so is not installed (package maskwatch-display): use --no-display"),
            std::string::npos)
      << headless.err;
  ASSERT_EQ(run({"dpkg-deb", "-x", display_deb.string(), root.string()}).code, 0);
  EXPECT_TRUE(fs::exists(root / "usr/lib/maskwatch/libmaskwatch_display.so"));
  const auto windowed = run({"env", "DISPLAY=:97", bin, "run", "--source", clip, "--max-frames", "1"});
  EXPECT_EQ(windowed.code, 1) << windowed.err;
  EXPECT_NE(windowed.err.find("cannot connect to the display :97: use --no-display"), std::string::npos)
      << windowed.err;

  // The unit's command, run from the unpacked folder with the packaged config: it serves
  // (the webcam of the default config is absent here, so that camera is offline) and stops
  // at SIGTERM, the way systemd stops it.
  const std::string unit = read_bytes(root / "usr/lib/systemd/system/maskwatch.service");
  const std::string exec = unit_value(unit, "ExecStart");
  EXPECT_EQ(exec, "/usr/bin/maskwatch serve --config /etc/maskwatch/config.yaml --data /var/lib/maskwatch");
  EXPECT_EQ(unit_value(unit, "ExecStartPre"), "/usr/bin/maskwatch config check /etc/maskwatch/config.yaml");
  // Reload checks the file first (a mistake fails `systemctl reload`), then signals serve.
  EXPECT_EQ(unit_value(unit, "ExecReload"), "/usr/bin/maskwatch config check /etc/maskwatch/config.yaml");
  EXPECT_NE(unit.find("\nExecReload=/bin/kill -HUP $MAINPID\n"), std::string::npos) << unit;
  // A failing start (a config mistake) is retried a bounded number of times, not for ever.
  EXPECT_EQ(unit_value(unit, "StartLimitBurst"), "5");
  EXPECT_EQ(unit_value(unit, "StartLimitIntervalSec"), "60");
  EXPECT_EQ(unit_value(unit, "StateDirectory"), "maskwatch");
  EXPECT_EQ(unit_value(unit, "DynamicUser"), "yes");
  const int port = free_port();
  BackgroundProcess serve({bin, "serve", "--config", (root / "etc/maskwatch/config.yaml").string(), "--data",
                           (tmp / "var-lib-maskwatch").string(), "--listen", "127.0.0.1:" + std::to_string(port)});
  httplib::Client client("127.0.0.1", port);
  ASSERT_TRUE(wait_until([&] { return client.Get("/healthz") != nullptr; }, 60)) << serve.err();
  const auto stats = client.Get("/api/stats");
  ASSERT_TRUE(stats) << serve.err();
  const auto j = nlohmann::json::parse(stats->body);
  ASSERT_TRUE(j["cameras"].contains("webcam")) << j.dump();
  serve.signal(SIGTERM);
  EXPECT_EQ(serve.wait(20), 0) << serve.err();
  EXPECT_TRUE(fs::exists(tmp / "var-lib-maskwatch")) << "no data folder";
}
