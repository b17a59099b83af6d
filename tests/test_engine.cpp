// The serve engine in-process (no HTTP): what other threads may do while it stops.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "serve/config.h"
#include "serve/engine.h"
#include "serve/storage.h"
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
          const auto m = engine.prometheus_metrics();
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

}  // namespace maskwatch::test
