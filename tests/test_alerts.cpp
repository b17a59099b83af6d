// Alert rules of `serve` end to end: the demo clip (its face is without a mask for about 2 s
// around every loop), a camera that cannot open, a real loopback webhook receiver (one fast
// route, one that does not answer for 8 s) and the alert rows in the history.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <ctime>
#include <mutex>
#include <opencv2/imgcodecs.hpp>
#include <thread>

#include "serve_server.h"
#include "support.h"

using namespace maskwatch;
using namespace maskwatch::test;

namespace {

struct WebhookReceiver {
  httplib::Server server;
  int port = 0;
  std::mutex mutex;
  std::vector<std::string> bodies;
  std::atomic<int> slow_calls{0};
  std::thread thread;
  WebhookReceiver() {
    server.Post("/hook", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mutex);
      bodies.push_back(req.body);
      res.set_content("ok", "text/plain");
    });
    server.Post("/slow", [this](const httplib::Request&, httplib::Response& res) {
      ++slow_calls;
      for (int i = 0; i < 80 && server.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      res.set_content("late", "text/plain");
    });
    port = server.bind_to_any_port("127.0.0.1");
    thread = std::thread([this] { server.listen_after_bind(); });
  }
  ~WebhookReceiver() {
    server.stop();
    thread.join();
  }
  std::vector<std::string> received() {
    std::lock_guard<std::mutex> lock(mutex);
    return bodies;
  }
};

}  // namespace

TEST(Alerts, RulesFireOncePerCooldownIntoHistoryAndWebhooks) {
  WebhookReceiver hook;
  const std::string base = "http://127.0.0.1:" + std::to_string(hook.port);
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  const int other_hour = (tm.tm_hour + 12) % 24;
  const std::string rules =
      "alerts:\n"
      "  - {name: once, kind: unmasked_face, seconds: 1, cooldown_s: 3600, cameras: [demo], webhook: " +
      base +
      "/hook}\n"
      "  - {name: often, kind: unmasked_face, seconds: 0.5, cooldown_s: 4, cameras: [demo]}\n"
      "  - {name: stuck, kind: unmasked_face, seconds: 1, cooldown_s: 3600, webhook: " +
      base +
      "/slow}\n"
      "  - {name: gone, kind: camera_offline, seconds: 1, cooldown_s: 3600}\n"
      "  - {name: not-now, kind: unmasked_face, seconds: 0.5, cooldown_s: 0, hours: [" +
      std::to_string(other_hour) + "]}\n";
  Server srv(rules, {}, "  gone:\n    source: /nonexistent/camera.mp4\n");

  // The webhook: one POST with the alert and a snapshot URL that resolves to a JPEG.
  ASSERT_TRUE(wait_until([&] { return !hook.received().empty(); }, 40)) << srv.proc->err();
  const auto a = nlohmann::json::parse(hook.received().front());
  EXPECT_EQ(a["rule"], "once") << a;
  EXPECT_EQ(a["kind"], "unmasked_face");
  EXPECT_EQ(a["camera"], "demo");
  EXPECT_TRUE(a["track_id"].is_number_integer());
  const std::string url = a["snapshot_url"];
  const std::string prefix = "http://127.0.0.1:" + std::to_string(srv.port);
  ASSERT_EQ(url.rfind(prefix, 0), 0u) << url;
  const auto snap = srv.client().Get(url.substr(prefix.size()).c_str());
  ASSERT_TRUE(snap);
  ASSERT_EQ(snap->status, 200);
  const auto img = cv::imdecode(
      cv::Mat(1, static_cast<int>(snap->body.size()), CV_8U, const_cast<char*>(snap->body.data())), cv::IMREAD_COLOR);
  EXPECT_GT(img.cols, 100);

  // A receiver that does not answer does not stall the frame loop.
  ASSERT_TRUE(wait_until([&] { return hook.slow_calls >= 1; }, 10));
  const int f0 = srv.get_json("/api/stats")["cameras"]["demo"]["frames_processed"].get<int>();
  std::this_thread::sleep_for(std::chrono::seconds(3));
  EXPECT_GE(srv.get_json("/api/stats")["cameras"]["demo"]["frames_processed"].get<int>() - f0, 15);

  // Three more loops of the clip: "once" stays at one, "often" fires again but never
  // within its 4 s cooldown, the offline camera once, the rule outside its hours never.
  std::this_thread::sleep_for(std::chrono::seconds(10));
  std::map<std::string, std::vector<double>> times;
  for (const auto& e : srv.get_json("/api/events?type=alert&limit=1000")) times[e["rule"]].push_back(e["time"]);
  EXPECT_EQ(times["once"].size(), 1u);
  EXPECT_EQ(times["stuck"].size(), 1u);
  EXPECT_EQ(times["gone"].size(), 1u);
  EXPECT_EQ(times["not-now"].size(), 0u);
  ASSERT_GE(times["often"].size(), 2u);
  std::sort(times["often"].begin(), times["often"].end());
  for (size_t i = 1; i < times["often"].size(); ++i) EXPECT_GE(times["often"][i] - times["often"][i - 1], 4.0);
  EXPECT_EQ(hook.received().size(), 1u);
  const auto gone = srv.get_json("/api/events?type=alert&camera=gone");
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_NE(gone[0]["detail"].get<std::string>().find("offline"), std::string::npos) << gone[0];
  srv.stop();  // under 2 s, with the slow delivery still in flight
}
