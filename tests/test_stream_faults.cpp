// Live streams that die or stall (issue 11): a real FFmpeg HTTP server on a free loopback
// port serves the webcam clip in a loop; `run` reads it while the test kills or freezes the
// server. Quitting must take about a second in every state, and a stream lost for good is
// an exit code 1 with the summary still written.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <thread>

#include "support.h"
#include "util/json_io.h"

using namespace maskwatch;
using namespace maskwatch::test;

namespace {

// ffmpeg serving the clip (real time, looped, no re-encoding; dump_extra repeats the MPEG-4
// headers in-band so a client can start decoding) to one client at http://127.0.0.1:PORT/live.ts
struct StreamServer {
  int port = free_port();
  std::string url = "http://127.0.0.1:" + std::to_string(port) + "/live.ts";
  BackgroundProcess proc{{"ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i",
                          shared_path("samples/video/webcam-mask-on-off.mp4").string(), "-c", "copy", "-bsf:v",
                          "dump_extra", "-f", "mpegts", "-listen", "1", url}};
};

// A run reading the server, started once the server listens; returns when frames flow.
struct StreamRun {
  TempDir dir;
  fs::path events = dir / "events.jsonl", summary = dir / "sum.json";
  std::unique_ptr<BackgroundProcess> proc;
  StreamRun(const StreamServer& server, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"run",      "--source",      server.url, "--no-display",
                                     "--events", events.string(), "--json",   summary.string()};
    args.insert(args.end(), extra.begin(), extra.end());
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // ffmpeg opens its input and listens
    proc = std::make_unique<BackgroundProcess>(cli_argv(args));
  }
  bool flowing() {
    return wait_until([&] { return line_count(events) >= 10; }, 30);
  }
};

}  // namespace

TEST(StreamFaults, CtrlCQuitsAtOnceWhileTheStreamIsDown) {
  StreamServer server;
  StreamRun run(server);
  ASSERT_TRUE(run.flowing()) << run.proc->err();
  server.proc.signal(SIGKILL);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // run is now reconnecting
  run.proc->signal(SIGINT);
  EXPECT_EQ(run.proc->wait(1.5), 0) << run.proc->err();
  EXPECT_TRUE(fs::exists(run.summary));
}

TEST(StreamFaults, AStallIsLoggedAndCtrlCStillQuitsAtOnce) {
  StreamServer server;
  StreamRun run(server);
  ASSERT_TRUE(run.flowing()) << run.proc->err();
  server.proc.signal(SIGSTOP);  // the connection stays open, no data comes
  EXPECT_TRUE(wait_until([&] { return run.proc->err().find("stalled") != std::string::npos; }, 10)) << run.proc->err();
  run.proc->signal(SIGINT);
  EXPECT_EQ(run.proc->wait(1.5), 0) << run.proc->err();
  server.proc.signal(SIGCONT);
}

TEST(StreamFaults, AStreamLostForGoodExitsOneWithTheSummary) {
  StreamServer server;
  StreamRun run(server, {"--reconnect-for", "3"});
  ASSERT_TRUE(run.flowing()) << run.proc->err();
  server.proc.signal(SIGKILL);
  const int code = run.proc->wait(15);
  EXPECT_EQ(code, 1) << run.proc->err();
  EXPECT_NE(run.proc->err().find("lost"), std::string::npos) << run.proc->err();
  ASSERT_TRUE(fs::exists(run.summary));
  const auto s = read_json(run.summary);
  EXPECT_GE(s["outage_seconds"].get<double>(), 2.5);
  // FPS counts processing time only: frames / (wall - outage).
  const double processing = s["wall_seconds"].get<double>() - s["outage_seconds"].get<double>();
  EXPECT_NEAR(s["fps"].get<double>(), s["frames"].get<double>() / processing, 0.01);
}
