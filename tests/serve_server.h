// A `maskwatch serve` process for tests: the demo clip (or another video) looped as camera
// "demo", a free port read from its start line, a data folder, JSON over HTTP.
#pragma once
#include <httplib.h>

#include <csignal>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>

#include "support.h"

namespace maskwatch::test {

// A serve process on a free port with the given config text (the demo camera by default).
struct Server {
  TempDir dir;
  std::unique_ptr<BackgroundProcess> proc;
  int port = 0;
  fs::path data = dir / "data";

  explicit Server(const std::string& extra_yaml = "", const fs::path& data_dir = {},
                  const std::string& extra_cameras = "", const fs::path& demo_source = {}) {
    if (!data_dir.empty()) data = data_dir;
    std::ofstream(dir / "serve.yaml")
        << extra_yaml << "\ncameras:\n  demo:\n    source: "
        << (demo_source.empty() ? shared_path("samples/video/webcam-mask-on-off.mp4") : demo_source).string()
        << "\n    loop: true\n    fps_limit: 10\n"
        << extra_cameras;
    start();
  }
  void start() {
    proc = std::make_unique<BackgroundProcess>(
        cli_argv({"serve", "--config", (dir / "serve.yaml").string(), "--port", "0", "--data", data.string()}));
    const std::regex line(R"(dashboard http://127\.0\.0\.1:(\d+)/)");
    std::smatch m;
    std::string out;
    EXPECT_TRUE(wait_until(
        [&] {
          out = proc->out();
          return std::regex_search(out, m, line) || !proc->running();
        },
        // (a bound, not a target: it starts in about a second, but once took over 30 s while a
        // fine-tuning and a package build held both cores at the start of a local ctest -j2)
        60))
        << proc->err();
    ASSERT_TRUE(std::regex_search(out, m, line)) << out << proc->err();
    port = std::stoi(m[1]);
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(10, 0);
    return c;
  }
  nlohmann::json get_json(const std::string& path) const {
    auto r = client().Get(path.c_str());
    if (!r || r->status != 200) {
      ADD_FAILURE() << path << ": " << (r ? std::to_string(r->status) + " " + r->body : "no answer");
      return {};
    }
    return nlohmann::json::parse(r->body);
  }
  bool online_with_frames(int frames, const httplib::Headers& auth = {}) const {
    auto r = client().Get("/api/stats", auth);
    if (!r || r->status != 200) return false;
    const auto s = nlohmann::json::parse(r->body)["cameras"]["demo"];
    return s["status"] == "online" && s["frames_processed"].get<int>() >= frames;
  }
  // SIGTERM; expects exit 0 within max_s. Returns the seconds it took.
  double stop(double max_s = 2.0) {
    const auto t0 = std::chrono::steady_clock::now();
    proc->signal(SIGTERM);
    EXPECT_EQ(proc->wait(10), 0) << proc->err();
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_LT(took, max_s);
    return took;
  }
};

}  // namespace maskwatch::test
