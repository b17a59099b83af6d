// `maskwatch bench-serve` (hidden; `maskwatch bench --serve` runs it): the service under
// load. Starts `maskwatch serve` as its own process with N cameras (the sample clip scaled
// to 640x480, looped), opens MJPEG viewers and polls /api/stats at a fixed rate, then
// reports processed FPS per camera, API latency p50/p99, the server's peak RSS and CPU.
// With --listeners and --slowloris, event listeners and slow-request sockets join the
// viewers (the HTTP layer under hostile use): /healthz latency and the SIGTERM exit time too.
// With --h264 the cameras play H.264 files made with the Debian `ffmpeg` (the clip, and with
// --empty an empty scene: a still of the clip's bare wall with sensor noise), as IP cameras
// send them; per camera it reports processed FPS and the capture-to-result latency.
#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <iterator>
#include <memory>
#include <mutex>
#include <opencv2/imgproc.hpp>
#include <regex>
#include <thread>

#include <nlohmann/json.hpp>
#include <sstream>

#include "app/serve/commands.h"
#include "media/video_reader.h"
#include "media/video_writer.h"
#include "serve/mqtt_client.h"
#include "util/error.h"
#include "util/net.h"
#include "util/paths.h"
#include "util/percentile.h"
#include "util/stopwatch.h"
#include "util/subprocess.h"

namespace maskwatch::app {
namespace {

using Clock = std::chrono::steady_clock;

struct BenchServeOpts {
  double seconds = 20;
  int cameras = 2, viewers = 8, poll_hz = 20;
  int listeners = 0;  // SSE event listeners
  int slowloris = 0;  // sockets that send a request head a byte at a time, reopened when dropped
  std::string broker = "/usr/sbin/mosquitto";  // "" (--no-mqtt) = no MQTT
  double outage_s = 0;                         // broker down this long after the measurement
  int buffer_messages = 1000;
  std::string clip = (shared_data_dir() / "samples" / "video" / "webcam-mask-on-off.mp4").string();
  double fps_limit = 30;
  int workers = 0;    // detector.workers; 0 = the server's default
  bool h264 = false;  // H.264 files instead of MJPEG
  int empty = 0;      // cameras (the last ones) that show an empty scene
  int empty_width = 640;  // of the empty scene (4:3): 320 = what a camera's sub-stream would give
  bool motion = true;  // motion gating of the detector (the cameras' default)
  bool clips = false;  // an unmasked_face alert rule every 5 s per camera: event clips recorded
  std::string ffmpeg = "/usr/bin/ffmpeg";
};

// H.264 15 fps versions of the MJPEG clip (640x480) and of an empty scene (a still of the
// clip's bare wall, top right, scaled up, with temporal sensor noise so that frames differ).
std::pair<std::filesystem::path, std::filesystem::path> make_h264_clips(const std::filesystem::path& mjpeg,
                                                                        const std::string& source,
                                                                        const std::string& ffmpeg,
                                                                        const std::filesystem::path& dir,
                                                                        int empty_width) {
  if (access(ffmpeg.c_str(), X_OK) != 0) throw Error("--h264 needs ffmpeg at " + ffmpeg + " (apt install ffmpeg)");
  const std::vector<std::string> x264 = {"-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "30"};
  const auto run = [&](std::vector<std::string> args, const std::filesystem::path& out) {
    args.insert(args.begin(), {ffmpeg, "-nostdin", "-v", "error", "-y"});
    if (out.extension() == ".mp4") args.insert(args.end(), x264.begin(), x264.end());
    args.push_back(out.string());
    if (run_process(args).exit_code != 0) throw Error("ffmpeg could not write " + out.string());
  };
  const auto faces = dir / "faces.mp4", empty = dir / "empty.mp4";
  run({"-i", mjpeg.string(), "-r", "15"}, faces);
  run({"-i", source, "-vf",
       fmt::format("select=eq(n\\,0),crop=iw*0.28:ih*0.37:iw*0.72:0,scale={}:{}", empty_width, empty_width * 3 / 4),
       "-frames:v", "1"},
      dir / "wall.png");
  run({"-loop", "1", "-framerate", "15", "-t", "10", "-i", (dir / "wall.png").string(), "-vf", "noise=alls=6:allf=t"},
      empty);
  return {faces, empty};
}

// The clip at 640x480 (letterboxed crop of the centre), as MJPEG AVI.
std::filesystem::path make_clip_640(const std::string& clip, const std::filesystem::path& dir) {
  VideoReader in;
  if (!in.open(clip)) throw Error("cannot open " + clip + ": " + in.error());
  const auto out = dir / "clip640.avi";
  VideoWriter w;
  if (!w.open(out, in.fps(), cv::Size(640, 480))) throw Error("cannot write " + out.string() + ": " + w.error());
  for (cv::Mat f; in.read(f);) {
    const int cw = f.rows * 4 / 3;
    cv::Mat crop = f(cv::Rect((f.cols - cw) / 2, 0, cw, f.rows)), small;
    cv::resize(crop, small, cv::Size(640, 480), 0, 0, cv::INTER_AREA);
    if (!w.write(small)) throw Error("cannot write " + out.string() + ": " + w.error());
  }
  if (!w.close()) throw Error("cannot write " + out.string() + ": " + w.error());
  return out;
}

double process_cpu_seconds(int pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string s((std::istreambuf_iterator<char>(in)), {});
  const auto close = s.rfind(')');
  std::istringstream rest(s.substr(close + 2));
  std::string f;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> f; ++i) {
    if (i == 14) utime = std::stoull(f);
    if (i == 15) stime = std::stoull(f);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// A memory line of /proc/PID/status in MiB: "VmHWM" (peak resident) or "VmRSS" (now).
double status_mib(int pid, const std::string& key) {
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  for (std::string line; std::getline(in, line);)
    if (line.rfind(key + ":", 0) == 0) return std::stod(line.substr(key.size() + 1)) / 1024;
  return 0;
}

// Sends `signal` to a child process and waits for it; pid becomes -1 (nothing when it is not one).
void end_child(pid_t& pid, int signal) {
  if (pid <= 0) return;
  kill(pid, signal);
  waitpid(pid, nullptr, 0);
  pid = -1;
}

// mosquitto on a loopback port, for as long as the object lives (stop/start keep the port).
struct Broker {
  std::string program;
  std::filesystem::path conf;
  int port = free_loopback_port();
  pid_t pid = -1;
  Broker(std::string prog, const std::filesystem::path& dir) : program(std::move(prog)), conf(dir / "mosquitto.conf") {
    std::ofstream(conf) << "listener " << port << " 127.0.0.1\nallow_anonymous true\npersistence false\n";
    start();
  }
  void start() {
    pid = fork();
    if (pid == 0) {
      const int null_fd = open("/dev/null", O_WRONLY);
      dup2(null_fd, 1);
      dup2(null_fd, 2);
      execl(program.c_str(), program.c_str(), "-c", conf.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  void stop() { end_child(pid, SIGTERM); }
  ~Broker() { stop(); }
};

// Prometheus value of an unlabelled metric, -1 when missing.
double metric_value(httplib::Client& api, const std::string& name) {
  auto r = api.Get("/metrics");
  if (!r) return -1;
  std::smatch m;
  if (!std::regex_search(r->body, m, std::regex("\n" + name + " ([0-9.e+-]+)"))) return -1;
  return std::stod(m[1]);
}

// Keeps `count` slowloris sockets on the server until `stop`: each sends a request head a
// byte every 200 ms; one the server drops (its request time-out) is opened again.
void keep_slowloris(int port, int count, const std::atomic<bool>& stop) {
  const auto open_one = [port] {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      close(fd);
      return -1;
    }
    const std::string head = "GET /api/stats HTTP/1.1\r\nHost: x\r\n";
    (void)!send(fd, head.data(), head.size(), MSG_NOSIGNAL);
    return fd;
  };
  std::vector<int> fds(static_cast<size_t>(count), -1);
  while (!stop) {
    for (int& fd : fds) {
      char buf[512];
      const ssize_t n = fd < 0 ? 0 : recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (fd >= 0 && (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)))) {
        (void)!send(fd, "X", 1, MSG_NOSIGNAL);
        continue;
      }
      if (fd >= 0) close(fd);  // dropped by the server: a new one takes its place
      fd = open_one();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  for (int fd : fds)
    if (fd >= 0) close(fd);
}

// The bench's temporary folder, removed however the bench ends (an error left one in /tmp
// per run).
struct BenchFolder {
  std::filesystem::path path;
  BenchFolder() {
    char tmpl[] = "/tmp/maskwatch-bench-serve-XXXXXX";
    if (!mkdtemp(tmpl)) throw Error("cannot create a temporary folder");
    path = tmpl;
  }
  ~BenchFolder() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

// The server under test: killed if the bench ends early (an error in the middle left it running).
struct ServerProcess {
  pid_t pid = -1;
  // Asks it to stop and waits; the seconds it took.
  double terminate() {
    const auto t0 = Clock::now();
    end_child(pid, SIGTERM);
    return std::chrono::duration<double>(Clock::now() - t0).count();
  }
  // At once, for a server that failed or hung: SIGTERM could wait for ever.
  void kill_now() { end_child(pid, SIGKILL); }
  ~ServerProcess() { kill_now(); }
};

// The client threads end (told by `stop`) before the bench returns or throws: a joinable thread
// destroyed by an exception would end the process.
struct ClientThreads {
  std::atomic<bool>& stop;
  std::vector<std::thread> threads;
  void join() {
    stop = true;
    for (auto& t : threads)
      if (t.joinable()) t.join();
  }
  ~ClientThreads() { join(); }
};

void bench_serve(const BenchServeOpts& o) {
  if (o.empty > 0 && !o.h264) throw Error("--empty needs --h264 (the empty scene is made as an H.264 file)");
  if (o.empty > o.cameras) throw Error("--empty cannot exceed --cameras");
  const BenchFolder folder;
  const std::filesystem::path& dir = folder.path;
  auto clip = make_clip_640(o.clip, dir), empty_clip = clip;
  if (o.h264) std::tie(clip, empty_clip) = make_h264_clips(clip, o.clip, o.ffmpeg, dir, o.empty_width);
  {
    std::ofstream cfg(dir / "bench.yaml");
    // Every client here is 127.0.0.1: the per-client cap must hold them all.
    cfg << "http: {max_stream_clients: " << o.viewers << ", max_streams: " << o.viewers + o.listeners
        << ", max_connections_per_client: " << o.viewers + o.listeners + o.slowloris + 16 << "}\n";
    if (o.workers > 0) cfg << "detector: {workers: " << o.workers << "}\n";
    if (o.clips)
      cfg << "alerts:\n  - {name: bench, kind: unmasked_face, seconds: 0.5, cooldown_s: 5}\n";
    cfg << "cameras:\n";
    for (int c = 0; c < o.cameras; ++c)
      cfg << "  cam" << c << ": {source: " << (c >= o.cameras - o.empty ? empty_clip : clip).string()
          << ", loop: true, fps_limit: " << o.fps_limit << (o.motion ? "" : ", motion: {enabled: false}") << "}\n";
  }
  std::unique_ptr<Broker> broker;
  if (!o.broker.empty()) {
    if (access(o.broker.c_str(), X_OK) != 0)
      throw Error("no MQTT broker at " + o.broker + " (install mosquitto, or --no-mqtt)");
    broker = std::make_unique<Broker>(o.broker, dir);
    std::ofstream(dir / "bench.yaml", std::ios::app)
        << "mqtt: {host: 127.0.0.1, port: " << broker->port
        << ", client_id: bench, buffer_messages: " << o.buffer_messages << "}\n";
  }
  int out_pipe[2];
  if (pipe(out_pipe) != 0) throw Error("pipe failed");
  const std::string self = sibling_executable(kRuntimeBinary).string();
  const std::filesystem::path server_log = dir / "serve.log";  // the server's log lines stay out of the table
  ServerProcess server;
  const pid_t pid = server.pid = fork();
  if (pid == 0) {
    dup2(out_pipe[1], 1);
    close(out_pipe[0]);
    const int log_fd = open(server_log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (log_fd >= 0) dup2(log_fd, 2);
    execl(self.c_str(), self.c_str(), "serve", "--config", (dir / "bench.yaml").c_str(), "--port", "0", "--data",
          (dir / "data").c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out_pipe[1]);
  std::string banner;
  char ch;
  while (banner.find('\n') == std::string::npos && read(out_pipe[0], &ch, 1) == 1) banner += ch;
  std::smatch m;
  if (!std::regex_search(banner, m, std::regex(R"(127\.0\.0\.1:(\d+))"))) {
    server.kill_now();
    std::ifstream log(server_log);
    throw Error("serve did not start: " + banner + std::string(std::istreambuf_iterator<char>(log), {}));
  }
  const int port = std::stoi(m[1]);
  httplib::Client api("127.0.0.1", port);
  const auto stats = [&] {
    auto r = api.Get("/api/stats");
    return r && r->status == 200 ? nlohmann::json::parse(r->body) : nlohmann::json();
  };
  // Warm-up: every camera online and processing.
  for (int i = 0; i < 200; ++i) {
    const auto s = stats();
    bool all = !s.is_null();
    for (int c = 0; all && c < o.cameras; ++c)
      all = s["cameras"][fmt::format("cam{}", c)]["frames_processed"].get<int64_t>() >= 10;
    if (all) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::atomic<bool> stop{false};
  std::atomic<int64_t> stream_bytes{0};
  ClientThreads clients{stop, {}};
  auto& viewers = clients.threads;
  for (int v = 0; v < o.viewers; ++v)
    viewers.emplace_back([&, v] {
      httplib::Client c("127.0.0.1", port);
      c.Get(fmt::format("/api/cam{}/stream.mjpeg", v % o.cameras).c_str(), [&](const char*, size_t n) {
        stream_bytes += static_cast<int64_t>(n);
        return !stop;
      });
    });
  for (int l = 0; l < o.listeners; ++l)
    viewers.emplace_back([&] {
      httplib::Client c("127.0.0.1", port);
      c.Get("/api/events/stream", [&](const char*, size_t) { return !stop; });
    });
  viewers.emplace_back([&] { keep_slowloris(port, o.slowloris, stop); });
  // An MQTT subscriber: messages per second, and for verdict events the time from the
  // verdict change (the event's own time stamp) to its arrival here.
  std::mutex mqtt_mutex;
  std::vector<double> mqtt_latency_ms;
  std::atomic<int64_t> mqtt_messages{0};
  std::atomic<bool> measuring{false};
  std::unique_ptr<MqttClient> subscriber;
  if (broker) {
    MqttOptions so;
    so.port = broker->port;
    so.client_id = "bench-subscriber";
    so.subscribe = {"maskwatch/bench/#"};
    subscriber = std::make_unique<MqttClient>(so, [&](const std::string& topic, const std::string& payload) {
      if (!measuring) return;
      ++mqtt_messages;
      if (topic != "maskwatch/bench/events") return;
      const auto e = nlohmann::json::parse(payload, nullptr, false);
      if (e.is_discarded() || !e.contains("time") || !e["time"].is_number() || e["type"] == "end") return;
      std::lock_guard<std::mutex> lock(mqtt_mutex);
      mqtt_latency_ms.push_back(1000 * (unix_now() - e["time"].get<double>()));
    });
    for (int i = 0; i < 50 && !subscriber->connected(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // subscribed
  }
  measuring = true;
  const auto before = stats();
  const double cpu0 = process_cpu_seconds(pid);
  const auto t0 = Clock::now();
  std::vector<double> latencies, health_latencies;
  while (std::chrono::duration<double>(Clock::now() - t0).count() < o.seconds) {
    const auto a = Clock::now();
    (void)stats();
    latencies.push_back(std::chrono::duration<double, std::milli>(Clock::now() - a).count());
    const auto h = Clock::now();
    (void)api.Get("/healthz");
    health_latencies.push_back(std::chrono::duration<double, std::milli>(Clock::now() - h).count());
    std::this_thread::sleep_until(a + std::chrono::microseconds(1000000 / o.poll_hz));
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  const auto after = stats();
  const double cpu = (process_cpu_seconds(pid) - cpu0) / elapsed;
  const double rss = status_mib(pid, "VmHWM");
  measuring = false;
  // SIGTERM with every stream and slow socket still attached (unless the broker part follows).
  double exit_s = -1;
  if (!(broker && o.outage_s > 0)) exit_s = server.terminate();
  clients.join();
  // Broker outage: memory of the server while messages queue, then the catch-up.
  std::string outage_table;
  if (broker && o.outage_s > 0) {
    const double rss_before = status_mib(pid, "VmRSS");
    broker->stop();
    double rss_max = rss_before;
    const auto down = Clock::now();
    while (std::chrono::duration<double>(Clock::now() - down).count() < o.outage_s) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      rss_max = std::max(rss_max, status_mib(pid, "VmRSS"));
    }
    const double queued = metric_value(api, "maskwatch_mqtt_queued_messages");
    const double dropped = metric_value(api, "maskwatch_mqtt_dropped_messages_total");
    broker->start();
    const auto up = Clock::now();
    while (metric_value(api, "maskwatch_mqtt_queued_messages") != 0 && Clock::now() - up < std::chrono::seconds(120))
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    outage_table = fmt::format(
        "\n| broker down s | server RSS before MiB | max RSS while down MiB | queued at the end | dropped | all sent "
        "after reconnect in s |\n|---|---|---|---|---|---|\n| {:.0f} | {:.0f} | {:.0f} | {:.0f} | {:.0f} | {:.1f} |\n",
        o.outage_s, rss_before, rss_max, queued, dropped, std::chrono::duration<double>(Clock::now() - up).count());
    // The server's own account of the outage.
    std::ifstream log(server_log);
    for (std::string line; std::getline(log, line);)
      if (line.find("mqtt:") != std::string::npos) outage_table += "server log: " + line + "\n";
  }
  server.terminate();

  std::string rows;
  double fps_min = 1e9, fps_sum = 0, latency_max = 0;
  for (int c = 0; c < o.cameras; ++c) {
    const auto name = fmt::format("cam{}", c);
    const auto& cam = after["cameras"][name];
    const double fps = static_cast<double>(cam["frames_processed"].get<int64_t>() -
                                           before["cameras"][name]["frames_processed"].get<int64_t>()) /
                       elapsed;
    const double p99 = cam.value("latency_ms_p99", 0.0);
    if (c < o.cameras - o.empty) fps_min = std::min(fps_min, fps);
    fps_sum += fps;
    latency_max = std::max(latency_max, p99);
    rows += fmt::format("| {} | {} | {:.1f} | {} | {:.0f} | {:.0f} |\n", name,
                        c >= o.cameras - o.empty ? "empty scene" : "faces", fps, cam["faces_now"].get<int>(),
                        cam.value("latency_ms_p50", 0.0), p99);
  }
  fmt::print(
      "serve under load: {} cameras ({} 640x480 15 fps, looped; {} of them an empty scene{}), fps_limit {}, motion "
      "gating {}, {} worker(s), {} MJPEG viewers, /api/stats polled at {} Hz, {:.0f} s\n\n"
      "| camera | scene | processed FPS | faces now | capture to result p50 ms | p99 ms |\n|---|---|---|---|---|---|\n{}\n",
      o.cameras, o.h264 ? "H.264" : "MJPEG", o.empty,
      o.empty_width != 640 ? fmt::format(" at {}x{}", o.empty_width, o.empty_width * 3 / 4) : "", o.fps_limit, o.motion ? "on" : "off", after.value("workers", 1),
      o.viewers, o.poll_hz,
      elapsed, rows);
  fmt::print(
      "| cameras | empty | motion gating | workers | processed FPS per camera with faces: min | mean (all) | cores used | "
      "latency p99 ms (worst camera) | API p99 ms | peak RSS MiB |\n|---|---|---|---|---|---|---|---|---|---|\n| {} | {} | "
      "{} | {} | {:.1f} | {:.1f} | {:.2f} | {:.0f} | {:.2f} | {:.0f} |\n\n",
      o.cameras, o.empty, o.motion ? "on" : "off", after.value("workers", 1), o.empty < o.cameras ? fps_min : 0.0, fps_sum / o.cameras, cpu, latency_max,
      percentile(latencies, 0.99), rss);
  fmt::print(
      "| API /api/stats p50 ms | p99 ms | requests | server peak RSS MiB | server CPU (cores) | MJPEG MB/s to viewers "
      "|\n"
      "|---|---|---|---|---|---|\n| {:.2f} | {:.2f} | {} | {:.0f} | {:.2f} | {:.2f} |\n",
      percentile(latencies, 0.5), percentile(latencies, 0.99), latencies.size(), rss, cpu,
      static_cast<double>(stream_bytes.load()) / elapsed / 1e6);
  if (o.clips) {
    const auto& c = after["clips"];
    const int64_t kept = c.value("frames_kept", int64_t{0}) - before["clips"].value("frames_kept", int64_t{0});
    const int64_t written = c.value("written", int64_t{0}) - before["clips"].value("written", int64_t{0});
    const double frame_ms = c.value("frame_ms_total", 0.0) - before["clips"].value("frame_ms_total", 0.0);
    const double clip_ms = c.value("clip_ms_total", 0.0) - before["clips"].value("clip_ms_total", 0.0);
    fmt::print(
        "\n| event clips written | failed | frames kept | ms per frame kept | ms per clip written | recorder cores | "
        "frames not kept (recorder behind) |\n|---|---|---|---|---|---|---|\n| {} | {} | {} | {:.2f} | {:.0f} | {:.3f} | {} "
        "|\n",
        written, c.value("failed", 0), kept, kept ? frame_ms / kept : 0.0, written ? clip_ms / written : 0.0,
        (frame_ms + clip_ms) / 1000 / elapsed, c.value("frames_dropped", 0));
  }
  if (o.listeners > 0 || o.slowloris > 0 || exit_s >= 0)
    fmt::print(
        "\n| streams (viewers + listeners) | slowloris sockets | /healthz p50 ms | p99 ms | /api/stats p99 ms | "
        "SIGTERM to exit s |\n|---|---|---|---|---|---|\n| {} | {} | {:.2f} | {:.2f} | {:.2f} | {} |\n",
        o.viewers + o.listeners, o.slowloris, percentile(health_latencies, 0.5), percentile(health_latencies, 0.99),
        percentile(latencies, 0.99), exit_s >= 0 ? fmt::format("{:.2f}", exit_s) : "-");
  if (broker) {
    std::lock_guard<std::mutex> lock(mqtt_mutex);
    fmt::print(
        "\n| MQTT messages/s | verdict events | event latency p50 ms | p99 ms | max ms |\n|---|---|---|---|---|\n"
        "| {:.1f} | {} | {:.1f} | {:.1f} | {:.1f} |\n",
        static_cast<double>(mqtt_messages.load()) / elapsed, mqtt_latency_ms.size(), percentile(mqtt_latency_ms, 0.5),
        percentile(mqtt_latency_ms, 0.99), percentile(mqtt_latency_ms, 1.0));
  }
  fmt::print("{}", outage_table);
}

}  // namespace

void add_bench_serve_command(CLI::App& root) {
  auto o = std::make_shared<BenchServeOpts>();
  auto* cmd = root.add_subcommand("bench-serve", "The service under load (run by bench --serve)");
  cmd->group("");  // hidden
  cmd->add_option("--seconds", o->seconds, "Measuring time")->capture_default_str()->check(in_range(2.0, 3600.0));
  cmd->add_option("--cameras", o->cameras, "Cameras")->capture_default_str()->check(in_range(1, 16));
  cmd->add_option("--viewers", o->viewers, "MJPEG viewers (spread over the cameras)")
      ->capture_default_str()
      ->check(in_range(0, 64));
  cmd->add_option("--listeners", o->listeners, "Server-sent event listeners")
      ->capture_default_str()
      ->check(in_range(0, 256));
  cmd->add_option("--slowloris", o->slowloris, "Sockets that send their request head a byte at a time")
      ->capture_default_str()
      ->check(in_range(0, 1000));
  cmd->add_option("--poll-hz", o->poll_hz, "/api/stats requests per second")
      ->capture_default_str()
      ->check(in_range(1, 1000));
  cmd->add_option("--clip", o->clip, "Video the cameras play")->capture_default_str();
  cmd->add_option("--fps-limit", o->fps_limit, "Each camera's fps_limit")->capture_default_str()->check(
      in_range(0.5, 120.0));
  cmd->add_option("--workers", o->workers, "detector.workers (0 = the server's default: one per core)")
      ->capture_default_str()
      ->check(in_range(0, 64));
  cmd->add_flag("--h264", o->h264, "Cameras play H.264 files (made with ffmpeg) instead of MJPEG");
  cmd->add_option("--empty", o->empty, "Cameras (the last ones) that show an empty scene")
      ->capture_default_str()
      ->check(in_range(0, 16));
  cmd->add_option("--empty-width", o->empty_width,
                  "Width of the empty scene (4:3; 320 = a camera's sub-stream, as `source` should name for idle "
                  "cameras)")
      ->capture_default_str()
      ->check(in_range(64, 1920));
  cmd->add_flag("--motion,!--no-motion", o->motion, "Motion gating of the face detector (default on)");
  cmd->add_flag("--clips", o->clips,
                "An unmasked_face alert rule (cooldown 5 s): each camera keeps frames for event clips and records "
                "one per alert");
  cmd->add_option("--ffmpeg", o->ffmpeg, "ffmpeg executable for --h264")->capture_default_str();
  auto* broker = cmd->add_option("--broker", o->broker, "mosquitto executable for the MQTT part")->capture_default_str();
  // An empty --broker '' meant this until every option refused empty values (app/cli.cpp).
  cmd->add_flag_callback("--no-mqtt", [o] { o->broker.clear(); }, "No broker and no MQTT part")->excludes(broker);
  cmd->add_option("--broker-outage", o->outage_s, "Then stop the broker this many seconds: memory and catch-up")
      ->capture_default_str()
      ->check(in_range(0.0, 3600.0));
  cmd->add_option("--buffer-messages", o->buffer_messages, "The server's MQTT queue while the broker is down")
      ->capture_default_str()
      ->check(in_range(0, 10000000));
  cmd->callback([o] { bench_serve(*o); });
}

}  // namespace maskwatch::app
