// `maskwatch serve --config FILE`: cameras as a service (engine + storage + HTTP API), and
// `maskwatch config check FILE`: validate a config and print the effective settings.
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <mutex>
#include <set>
#include <thread>

#include "app/cli.h"
#include "app/serve/commands.h"
#include "serve/alerts.h"
#include "serve/config.h"
#include "serve/engine.h"
#include "serve/fleet.h"
#include "serve/http_api.h"
#include "serve/mqtt_bridge.h"
#include "serve/storage.h"
#include "util/error.h"
#include "util/files.h"
#include "util/paths.h"
#include "util/stop_signals.h"
#include "util/threads.h"
#include "vision/face_detector.h"
#include "vision/mask_classifier.h"

namespace maskwatch::app {
namespace {

std::atomic<bool> g_stop{false};
std::atomic<bool> g_reload{false};

// SIGHUP re-reads the config (as daemons do; systemd's `reload`), where StopSignals would stop.
class ReloadSignal {
 public:
  ReloadSignal() {
    struct sigaction sa {};
    sa.sa_handler = [](int) { g_reload = true; };
    sa.sa_flags = SA_RESTART;  // other threads' blocking calls go on
    sigemptyset(&sa.sa_mask);
    sigaction(SIGHUP, &sa, &old_);
  }
  ~ReloadSignal() { sigaction(SIGHUP, &old_, nullptr); }
  ReloadSignal(const ReloadSignal&) = delete;
  ReloadSignal& operator=(const ReloadSignal&) = delete;

 private:
  struct sigaction old_ {};
};

struct ServeOpts {
  std::string config, listen, data_dir;
  int port = -1;
  int threads = 0;
};

// "host:port", "host", ":port" or "[ipv6]:port" over the config's http.listen / http.port. A
// bare IPv6 address ("::1") is a host: its last colon is not a port separator.
void apply_listen(const std::string& spec, HttpConfig& http, bool port_given) {
  if (spec.empty()) return;
  std::string host = spec, port_text;
  if (spec.front() == '[') {
    const auto close = spec.find(']');
    if (close == std::string::npos || (close + 1 < spec.size() && spec[close + 1] != ':'))
      throw Error(fmt::format("--listen {}: expected [IPV6]:PORT", spec));
    host = spec.substr(1, close - 1);
    if (close + 1 < spec.size()) port_text = spec.substr(close + 2);
  } else if (std::count(spec.begin(), spec.end(), ':') == 1) {
    const auto colon = spec.find(':');
    host = spec.substr(0, colon);
    port_text = spec.substr(colon + 1);
  }
  if (!host.empty()) http.listen = host;
  if (port_text.empty()) return;
  if (port_given) throw Error(fmt::format("--listen {} and --port both give a port: give one", spec));
  try {
    size_t used = 0;
    const int port = std::stoi(port_text, &used);
    if (used != port_text.size() || port < 0 || port > 65535) throw std::invalid_argument(spec);
    http.port = port;
  } catch (const std::exception&) {
    throw Error(fmt::format("--listen {}: expected HOST:PORT with a port 0..65535", spec));
  }
}

// A host in a URL: an IPv6 address in brackets.
std::string url_host(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

// The config file with the command line's overrides, as at start and at each reload;
// `data_dir_note`: the warning when --data replaces the file's own storage.dir.
ServeConfig load_config(const ServeOpts& o, std::string* data_dir_note = nullptr) {
  ServeConfig cfg = load_serve_config(o.config);
  apply_listen(o.listen, cfg.http, o.port >= 0);
  if (o.port >= 0) cfg.http.port = o.port;
  if (data_dir_note) *data_dir_note = data_dir_override_warning(cfg.storage, o.data_dir);
  if (!o.data_dir.empty()) cfg.storage.dir = o.data_dir;
  return cfg;
}

// Re-reads the config: cameras change now; other changed sections are named (a restart
// applies them). A file that does not load changes nothing: {400, its file:line reason}.
class Reloader {
 public:
  Reloader(const ServeOpts& o, ServeConfig running, Engine& engine, MqttBridge* mqtt)
      : opts_(o), running_(std::move(running)), engine_(engine), mqtt_(mqtt) {}
  std::pair<int, nlohmann::json> reload() {
    std::lock_guard<std::mutex> lock(mutex_);
    ServeConfig next;
    try {
      next = load_config(opts_);
      check_config_files(next);  // what the next restart would need
    } catch (const std::exception& e) {
      spdlog::error("reload refused, the running config stays: {}", e.what());
      return {400, {{"error", e.what()}, {"applied", false}}};
    }
    const auto was = running_.to_json(false), now = next.to_json(false);
    std::vector<std::string> restart;
    // The cameras carry the top-level tracker and detector settings (applied through them),
    // except what the one shared detector is built with at start.
    for (const auto& [key, value] : was.items()) {
      if (key == "cameras" || key == "file" || key == "tracker") continue;
      if (key == "detector") {
        for (const char* shared : DetectorSettings::kSetAtStart)
          if (now["detector"][shared] != value[shared]) restart.push_back(std::string("detector.") + shared);
        continue;
      }
      if (now.value(key, nlohmann::json()) != value) restart.push_back(key);
    }
    for (const auto& warning : config_warnings(next)) spdlog::warn("reload: {}", warning);
    const CameraChanges changes = engine_.reconfigure(next.cameras);
    if (mqtt_) mqtt_->cameras_changed(changes);
    running_.cameras = next.cameras;
    nlohmann::json out = changes.to_json();
    out["applied"] = true;
    out["restart_needed"] = restart;
    if (!restart.empty()) spdlog::warn("reload: {} changed; a restart applies that", fmt::join(restart, ", "));
    return {200, out};
  }
  nlohmann::json view() {
    std::lock_guard<std::mutex> lock(mutex_);
    return running_.to_json(/*redact=*/true);
  }

 private:
  const ServeOpts& opts_;
  std::mutex mutex_;
  ServeConfig running_;  // the file's other sections as at start: what a restart would change
  Engine& engine_;
  MqttBridge* mqtt_;
};

void serve(const ServeOpts& o) {
  set_compute_threads(o.threads);
  std::string data_dir_note;
  const ServeConfig cfg = load_config(o, &data_dir_note);
  if (!data_dir_note.empty()) spdlog::warn("{}", data_dir_note);
  for (const auto& warning : config_warnings(cfg)) spdlog::warn("{}", warning);
  check_output_dir(cfg.storage.dir, "storage folder");
  Storage storage(cfg.storage.dir);
  Engine engine(cfg, storage);
  HttpApi api(cfg, engine, storage);
  const int port = api.bind(cfg.http.listen, cfg.http.port);
  FleetView fleet;  // before the bridge that feeds it: destroyed after it
  if (!cfg.fleet.subscribe.empty()) api.set_fleet(&fleet);
  std::unique_ptr<MqttBridge> mqtt;
  if (cfg.mqtt.enabled) {
    mqtt = std::make_unique<MqttBridge>(cfg, engine, cfg.fleet.subscribe.empty() ? nullptr : &fleet);
    api.add_metrics([&mqtt](PromText& out) { mqtt->prometheus_metrics(out); });
  }
  char host[256] = "127.0.0.1";
  if (cfg.http.listen == "0.0.0.0" || cfg.http.listen == "::")
    gethostname(host, sizeof host - 1);
  else
    std::snprintf(host, sizeof host, "%s", cfg.http.listen.c_str());
  AlertEngine alerts(
      cfg, engine, storage, fmt::format("http://{}:{}", url_host(host), port),
      mqtt ? std::function<void(const AlertFired&)>([&mqtt](const AlertFired& a) { mqtt->publish_alert(a); })
           : nullptr);
  Reloader reloader(o, cfg, engine, mqtt.get());
  api.set_config_hooks({[&reloader] { return reloader.reload(); }, [&reloader] { return reloader.view(); }});
  g_stop = false;
  g_reload = false;
  const StopSignals stop_signals([](int) { g_stop = true; });
  const ReloadSignal reload_signal;
  if (mqtt) mqtt->start();  // before the cameras: their first status goes out too
  alerts.start();
  engine.start();
  std::thread http([&] { api.serve_forever(); });
  // One line a script can wait for (tests read the port from it).
  fmt::print("maskwatch serve: {} camera(s), dashboard http://{}:{}/ , data in {}\n", cfg.cameras.size(),
             url_host(cfg.http.listen), port, cfg.storage.dir);
  std::fflush(stdout);
  while (!g_stop) {
    if (g_reload.exchange(false)) {
      spdlog::info("SIGHUP: reading {} again", o.config);
      reloader.reload();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  spdlog::info("stopping: finishing open face tracks");
  engine.stop();  // ends streams and SSE first, so the HTTP threads can finish
  alerts.stop();
  if (mqtt) mqtt->stop();  // after the engine: the tracks it ended are published, then "stopped"
  api.stop();
  http.join();
  fmt::print("maskwatch serve: stopped\n");
}

}  // namespace

void add_serve_command(CLI::App& root) {
  auto o = std::make_shared<ServeOpts>();
  auto* cmd = root.add_subcommand("serve",
                                  "Run cameras as a service: HTTP API, live dashboard, compliance history (Ctrl-C or "
                                  "SIGTERM stop it cleanly; SIGHUP or POST /api/config/reload re-read the config: "
                                  "cameras added, removed or changed apply at once)");
  cmd->add_option("--config", o->config,
                  "YAML config (every key: `maskwatch config keys`; examples: examples/demo.yaml in the source tree, "
                  "/etc/maskwatch/config.yaml from the package)")
      ->required();
  cmd->add_option("--listen", o->listen,
                  "HOST:PORT to listen on (default: the config's http.listen and http.port; "
                  "127.0.0.1:8080)");
  cmd->add_option("--port", o->port, "Port only (0 = any free port, printed at start)")->check(in_range(0, 65535));
  cmd->add_option("--data", o->data_dir, "Storage folder (default: the config's storage.dir)");
  add_threads_option(cmd, o->threads);
  cmd->callback([o] { serve(*o); });
}

void add_config_command(CLI::App& root) {
  auto* cmd = root.add_subcommand("config", "Work with serve configuration files");
  cmd->require_subcommand(1);
  auto file = std::make_shared<std::string>();
  auto* check =
      cmd->add_subcommand("check", "Validate a config file and print the effective settings (secrets hidden)");
  check->add_option("file", *file, "YAML config")->required();
  check->callback([file] {
    const ServeConfig cfg = load_serve_config(*file);
    check_config_files(cfg);
    // The models as serve will load them: a file that exists but does not load must fail here,
    // where the service's pre-start check runs, not in a restart loop.
    MaskClassifier classifier(cfg.model_path());
    classifier.warn_if_crops_differ(true, cfg.model_path());
    std::set<std::string> face_models{cfg.detector.face_model};
    for (const auto& c : cfg.cameras) face_models.insert(c.detector.face_model);
    for (const auto& model : face_models) {
      FaceDetectorOptions o;
      o.model = model;
      FaceDetector detector(o);
    }
    fmt::print("{}\n", cfg.to_json(/*redact=*/true).dump(2));
    for (const auto& warning : config_warnings(cfg)) spdlog::warn("{}", warning);
    spdlog::info("{}: OK, {} camera(s)", *file, cfg.cameras.size());
  });
  auto markdown = std::make_shared<bool>(false);
  auto* keys = cmd->add_subcommand("keys", "Every config key: its values, default and meaning");
  keys->add_flag("--markdown", *markdown, "As a Markdown table (the README's)");
  keys->callback([markdown] {
    const auto all = config_keys();
    if (*markdown) {
      fmt::print("| key | values | default | meaning |\n|---|---|---|---|\n");
      for (const auto& k : all)
        fmt::print("| `{}` | {} | {} | {}{} |\n", k.key, k.type, k.default_value.empty() ? "" : "`" + k.default_value + "`",
                   k.help, k.secret ? " (secret: also `" + k.key.substr(k.key.rfind('.') + 1) + "_env`)" : "");
      return;
    }
    size_t width = 0;
    for (const auto& k : all) width = std::max(width, k.key.size());
    for (const auto& k : all)
      fmt::print("{:<{}}  {}{}{}\n", k.key, width, k.help, k.type.empty() ? "" : " [" + k.type + "]",
                 k.default_value.empty() ? "" : " (default " + k.default_value + ")");
  });
}

}  // namespace maskwatch::app
