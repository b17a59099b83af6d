// The serve engine in-process (no HTTP): what other threads may do while it stops.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "serve/config.h"
#include "serve/engine.h"
#include "serve/storage.h"
#include "vision/face_detector.h"
#include "support.h"

namespace maskwatch::test {

// The HTTP and MQTT threads read camera stats and metrics while `serve` stops the engine
// (it stops before them). stop() used to destroy each camera's feed while those readers
// dereferenced it without the camera's lock: a use-after-free that ASan reports when the
// timing lines up. Several stops under steady reading give it many chances.
TEST(Engine, StatsAndMetricsMayBeReadWhileTheEngineStops) {
  TempDir dir;
  const std::string clip = shared_path("samples/video/webcam-mask-on-off.mp4").string();
  const ServeConfig cfg =
      parse_serve_config("storage: {dir: " + (dir / "data").string() + "}\ncameras:\n  a: {source: " + clip +
                             ", loop: true}\n  b: {source: " + clip + ", loop: true}\n",
                         dir / "serve.yaml");
  for (int round = 0; round < 4; ++round) {
    Storage storage(cfg.storage.dir);
    Engine engine(cfg, storage);
    engine.start();
    std::atomic<bool> done{false};
    std::atomic<int> reads{0};
    std::vector<std::thread> readers;
    for (int i = 0; i < 2; ++i)
      readers.emplace_back([&] {
        while (!done) {
          const auto s = engine.stats();
          PromText text;
          engine.prometheus_metrics(text);
          const std::string m = text.str();
          EXPECT_TRUE(s["cameras"].contains("a"));
          EXPECT_NE(m.find("maskwatch_camera_up{camera=\"b\"}"), std::string::npos);
          ++reads;
        }
      });
    std::this_thread::sleep_for(std::chrono::milliseconds(round * 150));
    engine.stop();
    // After the stop the cameras read as offline, never as freed memory.
    EXPECT_EQ(engine.stats()["cameras"]["a"]["status"], "offline");
    done = true;
    for (auto& t : readers) t.join();
    EXPECT_GT(reads.load(), 0);
  }
}

// Two cameras on two inference workers: each worker has its own models, a camera is claimed
// by one worker at a time, so every camera's frames go through its one tracker in order. The
// sample clip, looped, has one person who puts a mask on and takes it off: each camera's
// events must read as one tracker's would (track ids only grow, and the verdicts of a track
// change, never repeat), and both cameras are processed at their fps_limit.
TEST(Engine, TwoWorkersShareTwoCamerasEachCameraInOrder) {
  TempDir dir;
  const std::string clip = shared_path("samples/video/webcam-mask-on-off.mp4").string();
  const auto config = [&](const std::string& workers) {
    return parse_serve_config("storage: {dir: " + (dir / "data").string() + "}\n" + workers + "cameras:\n  a: {source: " +
                                  clip + ", loop: true, fps_limit: 8}\n  b: {source: " + clip +
                                  ", loop: true, fps_limit: 8}\n",
                              dir / "serve.yaml");
  };
  {
    Storage storage(config("").storage.dir);
    Engine engine(config("detector: {workers: 1}\n"), storage);
    EXPECT_EQ(engine.stats()["workers"], 1);
  }
  Storage storage(config("").storage.dir);
  Engine engine(config("detector: {workers: 2}\n"), storage);
  EXPECT_EQ(engine.stats()["workers"], 2);
  uint64_t cursor = engine.bus().head();
  engine.start();
  std::map<std::string, int> last_track;
  std::map<std::pair<std::string, int>, std::string> label_of;
  int verdicts = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(6);
  while (std::chrono::steady_clock::now() < until)
    for (const auto& event : engine.bus().read(&cursor, std::chrono::milliseconds(200))) {
      const auto e = to_json(*event, engine.classes());
      const std::string line = e.dump();
      if (e["type"] != "new" && e["type"] != "update") continue;
      const std::string cam = e["camera"];
      const int id = e["track_id"];
      if (e["type"] == "new") {
        EXPECT_GT(id, last_track.count(cam) ? last_track[cam] : -1) << line;
        last_track[cam] = id;
      } else {
        EXPECT_EQ(id, last_track[cam]) << line;  // one person in view: updates are of the newest track
        EXPECT_NE(e["label"].get<std::string>(), label_of[std::make_pair(cam, id)]) << line;
      }
      label_of[std::make_pair(cam, id)] = e["label"];
      ++verdicts;
    }
  const auto stats = engine.stats();
  engine.stop();
  EXPECT_GT(verdicts, 2);
  for (const char* cam : {"a", "b"}) {
    EXPECT_TRUE(last_track.count(cam)) << cam << " published no verdict";
    // 6 s at fps_limit 8, minus start-up (model loading, first frames): well over half.
    EXPECT_GT(stats["cameras"][cam]["frames_processed"].get<int>(), 25) << stats.dump();
  }
}

// Privacy as configured per camera, on what leaves the engine: the same clip through three
// cameras. `full` shows the face; `blurred` (the default) keeps under 5 % of its fine detail
// in the live frame and in snapshots; `none` shows a flat grey box and stores no image.
TEST(Engine, PrivacyModesHideFacesInFramesAndSnapshots) {
  TempDir dir;
  const std::string clip = shared_path("samples/video/webcam-mask-on-off.mp4").string();
  const ServeConfig cfg = parse_serve_config(
      "storage: {dir: " + (dir / "data").string() + "}\ncameras:\n  a: {source: " + clip +
          ", loop: true, privacy: {faces: full}}\n  b: {source: " + clip + ", loop: true}\n  c: {source: " + clip +
          ", loop: true, privacy: {faces: none}}\n",
      dir / "serve.yaml");
  EXPECT_EQ(cfg.camera("b")->privacy, FacePrivacy::Blurred);
  Storage storage(cfg.storage.dir);
  Engine engine(cfg, storage);
  engine.start();
  const auto frame_of = [&](const std::string& cam) {
    for (int i = 0; i < 100; ++i) {
      if (const auto j = engine.latest_jpeg(cam, /*boxes=*/false))
        if (engine.camera_stats().size() == 3) return cv::imdecode(j->bytes, cv::IMREAD_COLOR);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return cv::Mat();
  };
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const cv::Mat a = frame_of("a"), b = frame_of("b"), c = frame_of("c");
  ASSERT_FALSE(a.empty());
  ASSERT_FALSE(b.empty());
  ASSERT_FALSE(c.empty());
  const auto faces = FaceDetector(FaceDetectorOptions{}).detect(a);
  ASSERT_EQ(faces.size(), 1u);  // `full`: the face is there to be found
  const cv::Rect box = cv::Rect(faces[0].box) & cv::Rect(0, 0, a.cols, a.rows);
  const auto energy = [&](const cv::Mat& img) { return detail_energy(img, box); };

  EXPECT_LT(energy(b), 0.05 * energy(a)) << energy(b) << " vs " << energy(a);
  cv::Scalar mean, sd;
  cv::meanStdDev(c(box), mean, sd);
  EXPECT_LT(sd[0], 6.0);  // flat grey (JPEG ringing aside)
  EXPECT_NEAR(mean[0], 128, 6);
  engine.stop();  // ends the open tracks: snapshots for a and b, none for c
  int snapshots_a = 0, snapshots_b = 0, images_c = 0;
  for (const auto& f : std::filesystem::directory_iterator(storage.snapshot_dir())) {
    const std::string name = f.path().filename().string();
    snapshots_a += name.find("-a-") != std::string::npos;
    images_c += name.find("-c-") != std::string::npos;
    if (name.find("-b-") != std::string::npos) {
      ++snapshots_b;
      const cv::Mat snap = cv::imread(f.path().string());
      EXPECT_LT(detail_energy(snap, cv::Rect2f(0, 0, snap.cols, snap.rows)), 0.05 * energy(a)) << name;
    }
  }
  EXPECT_GE(snapshots_a, 1);
  EXPECT_GE(snapshots_b, 1);
  EXPECT_EQ(images_c, 0);
}

}  // namespace maskwatch::test
