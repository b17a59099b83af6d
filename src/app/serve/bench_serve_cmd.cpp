// `maskwatch bench-serve` (hidden; `maskwatch bench --serve` runs it): the service under
// load. Starts `maskwatch serve` as its own process with N cameras (the sample clip scaled
// to 640x480, looped), opens MJPEG viewers and polls /api/stats at a fixed rate, then
// reports processed FPS per camera, API latency p50/p99, the server's peak RSS and CPU.
#include <fmt/format.h>
#include <httplib.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <iterator>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#include <regex>
#include <thread>

#include <nlohmann/json.hpp>
#include <sstream>

#include "app/serve/commands.h"
#include "util/error.h"
#include "util/paths.h"

namespace maskwatch::app {
namespace {

using Clock = std::chrono::steady_clock;

struct BenchServeOpts {
  double seconds = 20;
  int cameras = 2, viewers = 8, poll_hz = 20;
  std::string clip = (shared_data_dir() / "samples" / "video" / "webcam-mask-on-off.mp4").string();
};

// The clip at 640x480 (letterboxed crop of the centre), as MJPEG AVI.
std::filesystem::path make_clip_640(const std::string& clip, const std::filesystem::path& dir) {
  cv::VideoCapture in(clip);
  if (!in.isOpened()) throw Error("cannot open " + clip);
  const auto out = dir / "clip640.avi";
  cv::VideoWriter w(out.string(), cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), in.get(cv::CAP_PROP_FPS), cv::Size(640, 480));
  for (cv::Mat f; in.read(f);) {
    const int cw = f.rows * 4 / 3;
    cv::Mat crop = f(cv::Rect((f.cols - cw) / 2, 0, cw, f.rows)), small;
    cv::resize(crop, small, cv::Size(640, 480), 0, 0, cv::INTER_AREA);
    w.write(small);
  }
  return out;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
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

double peak_rss_mib_of(int pid) {
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024;
  return 0;
}

void bench_serve(const BenchServeOpts& o) {
  char tmpl[] = "/tmp/maskwatch-bench-serve-XXXXXX";
  if (!mkdtemp(tmpl)) throw Error("cannot create a temporary folder");
  const std::filesystem::path dir = tmpl;
  const auto clip = make_clip_640(o.clip, dir);
  {
    std::ofstream cfg(dir / "bench.yaml");
    cfg << "http: {max_stream_clients: " << o.viewers << "}\ncameras:\n";
    for (int c = 0; c < o.cameras; ++c) cfg << "  cam" << c << ": {source: " << clip.string() << ", loop: true, fps_limit: 30}\n";
  }
  int out_pipe[2];
  if (pipe(out_pipe) != 0) throw Error("pipe failed");
  const std::string self = sibling_executable(kRuntimeBinary).string();
  const std::filesystem::path server_log = dir / "serve.log";  // the server's log lines stay out of the table
  const pid_t pid = fork();
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
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
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
  std::vector<std::thread> viewers;
  for (int v = 0; v < o.viewers; ++v)
    viewers.emplace_back([&, v] {
      httplib::Client c("127.0.0.1", port);
      c.Get(fmt::format("/api/cam{}/stream.mjpeg", v % o.cameras).c_str(), [&](const char*, size_t n) {
        stream_bytes += static_cast<int64_t>(n);
        return !stop;
      });
    });
  const auto before = stats();
  const double cpu0 = process_cpu_seconds(pid);
  const auto t0 = Clock::now();
  std::vector<double> latencies;
  while (std::chrono::duration<double>(Clock::now() - t0).count() < o.seconds) {
    const auto a = Clock::now();
    (void)stats();
    latencies.push_back(std::chrono::duration<double, std::milli>(Clock::now() - a).count());
    std::this_thread::sleep_until(a + std::chrono::microseconds(1000000 / o.poll_hz));
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  const auto after = stats();
  const double cpu = (process_cpu_seconds(pid) - cpu0) / elapsed;
  const double rss = peak_rss_mib_of(pid);
  stop = true;
  for (auto& t : viewers) t.join();
  kill(pid, SIGTERM);
  waitpid(pid, nullptr, 0);
  std::filesystem::remove_all(dir);

  std::string rows;
  for (int c = 0; c < o.cameras; ++c) {
    const auto name = fmt::format("cam{}", c);
    const double fps = static_cast<double>(after["cameras"][name]["frames_processed"].get<int64_t>() -
                                           before["cameras"][name]["frames_processed"].get<int64_t>()) / elapsed;
    rows += fmt::format("| {} | {:.1f} | {} |\n", name, fps, after["cameras"][name]["faces_now"].get<int>());
  }
  fmt::print("serve under load: {} cameras (640x480 clip, 15 fps, looped), {} MJPEG viewers, /api/stats polled at "
             "{} Hz, {:.0f} s\n\n| camera | processed FPS | faces now |\n|---|---|---|\n{}\n",
             o.cameras, o.viewers, o.poll_hz, elapsed, rows);
  fmt::print("| API /api/stats p50 ms | p99 ms | requests | server peak RSS MiB | server CPU (cores) | MJPEG MB/s to viewers |\n"
             "|---|---|---|---|---|---|\n| {:.2f} | {:.2f} | {} | {:.0f} | {:.2f} | {:.2f} |\n",
             percentile(latencies, 0.5), percentile(latencies, 0.99), latencies.size(), rss, cpu,
             static_cast<double>(stream_bytes.load()) / elapsed / 1e6);
}

}  // namespace

void add_bench_serve_command(CLI::App& root) {
  auto o = std::make_shared<BenchServeOpts>();
  auto* cmd = root.add_subcommand("bench-serve", "The service under load (run by bench --serve)");
  cmd->group("");  // hidden
  cmd->add_option("--seconds", o->seconds, "Measuring time")->capture_default_str()->check(CLI::Range(2.0, 3600.0));
  cmd->add_option("--cameras", o->cameras, "Cameras")->capture_default_str()->check(CLI::Range(1, 16));
  cmd->add_option("--viewers", o->viewers, "MJPEG viewers (spread over the cameras)")->capture_default_str()->check(CLI::Range(0, 64));
  cmd->add_option("--poll-hz", o->poll_hz, "/api/stats requests per second")->capture_default_str()->check(CLI::Range(1, 1000));
  cmd->add_option("--clip", o->clip, "Video the cameras play")->capture_default_str();
  cmd->callback([o] { bench_serve(*o); });
}

}  // namespace maskwatch::app
