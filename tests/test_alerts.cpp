// Alert rules of `serve` end to end: the demo clip (its face is without a mask for about 2 s
// around every loop), a camera that cannot open, a real loopback webhook receiver (one fast
// route, one that does not answer for 8 s) and the alert rows in the history.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <ctime>
#include <mutex>
#include <opencv2/imgcodecs.hpp>
#include <thread>

#include "media/video_reader.h"
#include "serve_server.h"
#include "util/stopwatch.h"
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
      "  - {name: low, kind: low_compliance, below: 1, window_minutes: 1, min_faces: 1, cooldown_s: 3600, "
      "cameras: [demo]}\n"
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
  // The clip's face is unmasked for 2 s of each 5 s loop: it counts as unmasked, in view or
  // ended (Engine::compliance), so compliance is under 100 % and the rule fires, once.
  ASSERT_EQ(times["low"].size(), 1u);
  const auto low = srv.get_json("/api/events?type=alert&label=low");
  ASSERT_EQ(low.size(), 1u);
  EXPECT_NE(low[0]["detail"].get<std::string>().find("under 100 %"), std::string::npos) << low[0];
  ASSERT_GE(times["often"].size(), 2u);
  std::sort(times["often"].begin(), times["often"].end());
  for (size_t i = 1; i < times["often"].size(); ++i) EXPECT_GE(times["often"][i] - times["often"][i - 1], 4.0);
  EXPECT_EQ(hook.received().size(), 1u);
  const auto gone = srv.get_json("/api/events?type=alert&camera=gone");
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_NE(gone[0]["detail"].get<std::string>().find("offline"), std::string::npos) << gone[0];
  srv.stop();  // under 2 s, with the slow delivery still in flight
}

// Event clips end to end: an alert of the demo camera gets an H.264 clip from before to after
// it (404 with Retry-After while it is recorded; admins only), the dashboard plays it in
// Chromium, and a camera with privacy none keeps no clip at all.
TEST(Alerts, AnAlertGetsAClipThatOnlyAdminsWatchAndTheDashboardPlays) {
  const std::string demo = shared_path("samples/video/webcam-mask-on-off.mp4").string();
  Server srv(
      "clips: {before_s: 2, after_s: 4, fps: 5}\n"
      "http: {auth: {token: adm-1, viewer_token: view-1}}\n"
      "alerts:\n"
      "  - {name: bare, kind: unmasked_face, seconds: 0.5, cooldown_s: 3600}\n",
      {}, "  hidden:\n    source: " + demo + "\n    loop: true\n    fps_limit: 10\n    privacy: {faces: none}\n");
  const httplib::Headers admin = {{"Authorization", "Bearer adm-1"}};
  const httplib::Headers viewer = {{"Authorization", "Bearer view-1"}};
  auto c = srv.client();
  const auto alert_of = [&](const std::string& camera) {
    const auto r = c.Get(("/api/events?type=alert&camera=" + camera).c_str(), admin);
    const auto list = r && r->status == 200 ? nlohmann::json::parse(r->body) : nlohmann::json::array();
    return list.empty() ? nlohmann::json() : list[0];
  };
  nlohmann::json a;
  ASSERT_TRUE(wait_until([&] { return !(a = alert_of("demo")).is_null(); }, 40)) << srv.proc->err();
  const std::string url = a["clip_url"];
  EXPECT_EQ(url, "/api/events/" + std::to_string(a["id"].get<int64_t>()) + "/clip.mp4");
  if (unix_now() < a["time"].get<double>() + 3) {  // well within after_s: still being recorded
    const auto early = c.Get(url.c_str(), admin);
    ASSERT_TRUE(early);
    EXPECT_EQ(early->status, 404);
    EXPECT_NE(early->body.find("still being recorded"), std::string::npos) << early->body;
    EXPECT_GE(std::stoi(early->get_header_value("Retry-After")), 1);
  }
  // A viewer sees the event and its blurred snapshot, not the clip.
  const auto as_viewer = c.Get(url.c_str(), viewer);
  ASSERT_TRUE(as_viewer);
  EXPECT_EQ(as_viewer->status, 403);
  EXPECT_NE(as_viewer->body.find("admin"), std::string::npos) << as_viewer->body;
  const std::string snapshot_url = a["snapshot_url"];
  const auto snapshot = c.Get(snapshot_url.c_str(), viewer);
  ASSERT_TRUE(snapshot);
  EXPECT_EQ(snapshot->status, 200);
  // Only a clip is served in ranges: any other reply is whole, whatever Range asks (the
  // library's own slicing had answered `-0` with 206 and no bytes).
  for (const std::string& path : {snapshot_url, std::string("/api/stats")}) {
    httplib::Headers h = viewer;
    h.insert({"Range", "bytes=-0"});
    const auto whole = c.Get(path.c_str(), h);
    ASSERT_TRUE(whole) << path;
    EXPECT_EQ(whole->status, 200) << path;
    EXPECT_TRUE(whole->get_header_value("Content-Range").empty()) << path;
    if (whole->get_header_value("Content-Type") == "image/jpeg") EXPECT_TRUE(whole->body == snapshot->body) << path;
    else EXPECT_NO_THROW(nlohmann::json::parse(whole->body)) << whole->body;
  }
  // Nor is a viewer offered it: no clip URL in the events it reads (the dashboard showed a
  // button that answered 403).
  const auto viewer_list = c.Get("/api/events?type=alert&camera=demo", viewer);
  ASSERT_TRUE(viewer_list);
  EXPECT_EQ(nlohmann::json::parse(viewer_list->body)[0]["clip_url"], "");
  const auto one = c.Get(("/api/events/" + std::to_string(a["id"].get<int64_t>())).c_str(), viewer);
  EXPECT_EQ(nlohmann::json::parse(one->body)["clip_url"], "");

  std::unique_ptr<httplib::Response> clip;
  ASSERT_TRUE(wait_until(
      [&] {
        auto got = c.Get(url.c_str(), admin);
        if (got) clip = std::make_unique<httplib::Response>(*got);
        return clip && clip->status == 200;
      },
      15))
      << (clip ? clip->body : "no answer") << srv.proc->err();
  EXPECT_EQ(clip->get_header_value("Content-Type"), "video/mp4");
  ASSERT_GT(clip->body.size(), 1000u);
  EXPECT_EQ(clip->body.substr(4, 4), "ftyp");
  // Ranges as browsers ask for them; one past the end is 416 with the size, not 206 with nothing.
  httplib::Headers ranged = admin;
  ranged.insert({"Range", "bytes=0-99"});
  const auto head = c.Get(url.c_str(), ranged);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 206);
  EXPECT_EQ(head->body, clip->body.substr(0, 100));
  httplib::Headers past = admin;
  past.insert({"Range", fmt::format("bytes={}-{}", clip->body.size() + 10, clip->body.size() + 20)});
  const auto beyond = c.Get(url.c_str(), past);
  ASSERT_TRUE(beyond);
  EXPECT_EQ(beyond->status, 416) << beyond->body;
  EXPECT_EQ(beyond->get_header_value("Content-Range"), fmt::format("bytes */{}", clip->body.size()));
  EXPECT_EQ(beyond->get_header_value_count("Content-Range"), 1u);  // the library had added its own
  // An end past the clip is clamped; several ranges are answered with the whole clip.
  const auto ask = [&](const std::string& range) {
    httplib::Headers h = admin;
    h.insert({"Range", range});
    return c.Get(url.c_str(), h);
  };
  const auto clamped = ask(fmt::format("bytes=0-{}", clip->body.size() * 10));
  ASSERT_TRUE(clamped);
  EXPECT_EQ(clamped->status, 206);
  EXPECT_EQ(clamped->get_header_value("Content-Range"), fmt::format("bytes 0-{}/{}", clip->body.size() - 1,
                                                                    clip->body.size()));
  EXPECT_EQ(clamped->body, clip->body);
  const auto tail = ask("bytes=-10");
  ASSERT_TRUE(tail);
  EXPECT_EQ(tail->status, 206);
  EXPECT_EQ(tail->body, clip->body.substr(clip->body.size() - 10));
  const auto several = ask("bytes=0-3,10-13");
  ASSERT_TRUE(several);
  EXPECT_EQ(several->status, 200);
  EXPECT_EQ(several->body, clip->body);
  EXPECT_EQ(ask("bytes=-0")->status, 416);
  VideoReader r;
  ASSERT_TRUE(r.open_memory(std::vector<uint8_t>(clip->body.begin(), clip->body.end()))) << r.error();
  int frames = 0;
  cv::Mat f;
  while (r.read(f)) ++frames;
  EXPECT_EQ(f.cols, 640);
  // 4 s after at 5 a second, and up to 2 s before (the camera may have started later).
  EXPECT_GE(frames, 20);
  EXPECT_LE(frames, 31);

  // The dashboard (admin session) plays it.
  const fs::path script = fs::path(MASKWATCH_TEST_SOURCE_DIR) / "tests" / "browser" / "dashboard_check.py";
  fs::create_directories(MASKWATCH_TEST_ARTIFACT_DIR);
  const fs::path shot = fs::path(MASKWATCH_TEST_ARTIFACT_DIR) / "dashboard-clip.png";
  const std::string page = "http://127.0.0.1:" + std::to_string(srv.port) + "/?token=adm-1";
  const std::string cmd = "timeout 90 /usr/bin/python3 " + script.string() + " --clip '" + page + "' " +
                          shot.string() + " 1280 1400 > " + (srv.dir / "check.json").string() + " 2> " +
                          (srv.dir / "check.log").string();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << read_bytes(srv.dir / "check.log");
  const auto page_result = nlohmann::json::parse(read_bytes(srv.dir / "check.json"));
  EXPECT_GT(page_result["clip"].value("played_s", 0.0), 1.0) << page_result;
  EXPECT_EQ(page_result["clip"].value("width", 0), 640) << page_result;
  EXPECT_TRUE(page_result["console_errors"].empty()) << page_result["console_errors"];

  // Privacy none: the alert is there, without snapshot or clip; no file of that camera.
  nlohmann::json hidden;
  ASSERT_TRUE(wait_until([&] { return !(hidden = alert_of("hidden")).is_null(); }, 20));
  EXPECT_EQ(hidden["clip_url"], "") << hidden;
  EXPECT_EQ(hidden["snapshot_url"], "") << hidden;
  srv.stop(4);
  for (const auto& e : fs::directory_iterator(srv.data / "clips"))
    EXPECT_NE(e.path().filename().string().find("-demo-"), std::string::npos) << e.path();
}

// clips.unmasked_tracks: a clip around each track's first verdict without a mask, linked to the
// track's history row when it ends (here: at the stop) and served after a restart.
TEST(Alerts, UnmaskedTracksGetAClipLinkedToTheirEvent) {
  Server srv("clips: {unmasked_tracks: true, before_s: 1, after_s: 1}\n");
  ASSERT_TRUE(wait_until([&] { return srv.get_json("/api/stats")["clips"].value("written", 0) >= 1; }, 40))
      << srv.proc->err();
  srv.stop(4);
  srv.start();
  const auto tracks = srv.get_json("/api/events?type=track");
  ASSERT_FALSE(tracks.empty());
  std::string url;
  for (const auto& t : tracks)
    if (!t.value("clip_url", "").empty()) url = t["clip_url"];
  ASSERT_FALSE(url.empty()) << tracks;
  const auto clip = srv.client().Get(url.c_str());
  ASSERT_TRUE(clip);
  EXPECT_EQ(clip->status, 200);
  EXPECT_EQ(clip->body.substr(4, 4), "ftyp");
  srv.stop();
}
