#include "serve/http_api.h"

#include <fmt/format.h>
#include <httplib.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <ctime>
#include <functional>
#include <thread>

#include "serve/dashboard_page.h"
#include "util/error.h"
#include "util/files.h"
#include "util/stopwatch.h"

namespace maskwatch {
namespace {

using httplib::Request;
using httplib::Response;

void send_json(Response& res, const nlohmann::json& j, int status = 200) {
  res.status = status;
  res.set_content(j.dump(), "application/json");
}

void send_error(Response& res, int status, const std::string& message) { send_json(res, {{"error", message}}, status); }

// Query parameter as a number; absent -> fallback; malformed -> throws (400).
double number_param(const Request& req, const char* name, double fallback) {
  if (!req.has_param(name)) return fallback;
  const std::string v = req.get_param_value(name);
  try {
    size_t used = 0;
    const double d = std::stod(v, &used);
    if (used != v.size() || !std::isfinite(d)) throw std::invalid_argument(v);
    return d;
  } catch (const std::exception&) {
    throw Error(fmt::format("parameter {}='{}' is not a number", name, v));
  }
}

// Midnight today, local time, as unix seconds.
bool constant_time_equal(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char d = 0;
  for (size_t i = 0; i < a.size(); ++i) d |= static_cast<unsigned char>(a[i] ^ b[i]);
  return d == 0;
}

}  // namespace

std::string base64_encode(const std::string& in) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v =
        (static_cast<uint8_t>(in[i]) << 16) | (static_cast<uint8_t>(in[i + 1]) << 8) | static_cast<uint8_t>(in[i + 2]);
    for (int s : {18, 12, 6, 0}) out += k[(v >> s) & 63];
  }
  if (i + 1 == in.size()) {
    const uint32_t v = static_cast<uint8_t>(in[i]) << 16;
    out += k[(v >> 18) & 63];
    out += k[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    const uint32_t v = (static_cast<uint8_t>(in[i]) << 16) | (static_cast<uint8_t>(in[i + 1]) << 8);
    out += k[(v >> 18) & 63];
    out += k[(v >> 12) & 63];
    out += k[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

namespace {

// One log line when a long-lived client (MJPEG viewer, SSE listener) comes and one when it
// goes: the operator sees who watches, and that a vanished viewer really freed its thread.
// The returned handle runs on_leave and logs the leave when the last copy is destroyed.
std::shared_ptr<void> log_client(const std::string& what, const Request& req, std::function<void()> on_leave = {}) {
  const std::string who = fmt::format("{}:{}", req.remote_addr, req.remote_port);
  spdlog::info("{} {} connected", what, who);
  const auto since = std::chrono::steady_clock::now();
  return std::shared_ptr<void>(nullptr, [what, who, since, on_leave = std::move(on_leave)](void*) {
    if (on_leave) on_leave();
    spdlog::info("{} {} left after {:.1f} s", what, who,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count());
  });
}

}  // namespace

HttpApi::HttpApi(const ServeConfig& config, Engine& engine, Storage& storage)
    : config_(config), engine_(engine), storage_(storage), server_(std::make_unique<httplib::Server>()) {
  // Every MJPEG viewer and SSE listener holds a thread: room for all of them plus API calls.
  const int threads =
      config_.http.max_stream_clients * static_cast<int>(std::max<size_t>(1, engine_.camera_names().size())) + 8;
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  server_->set_write_timeout(5, 0);  // a stalled viewer frees its thread within seconds
  server_->set_read_timeout(5, 0);
  server_->set_keep_alive_timeout(5);
  routes();
}

HttpApi::~HttpApi() { stop(); }

int HttpApi::bind(const std::string& host, int port) {
  const int bound = port == 0 ? server_->bind_to_any_port(host) : (server_->bind_to_port(host, port) ? port : -1);
  if (bound <= 0)
    throw Error(fmt::format("cannot listen on {}:{} (in use, or not an address of this machine)", host, port));
  return bound;
}

void HttpApi::serve_forever() { server_->listen_after_bind(); }

void HttpApi::stop() {
  if (server_ && server_->is_running()) server_->stop();
}

void HttpApi::routes() {
  auto& s = *server_;
  const HttpAuth auth = config_.http.auth;
  s.set_pre_routing_handler([auth](const Request& req, Response& res) {
    if (!auth.enabled() || req.path == "/healthz") return httplib::Server::HandlerResponse::Unhandled;
    const std::string header = req.get_header_value("Authorization");
    bool ok = false;
    if (!auth.token.empty()) ok = ok || constant_time_equal(header, "Bearer " + auth.token);
    if (!auth.user.empty())
      ok = ok || constant_time_equal(header, "Basic " + base64_encode(auth.user + ":" + auth.password));
    if (ok) return httplib::Server::HandlerResponse::Unhandled;
    res.status = 401;
    if (!auth.user.empty()) res.set_header("WWW-Authenticate", "Basic realm=\"maskwatch\"");
    res.set_content(R"({"error":"authentication required"})", "application/json");
    return httplib::Server::HandlerResponse::Handled;
  });
  s.set_exception_handler([](const Request&, Response& res, std::exception_ptr ep) {
    try {
      std::rethrow_exception(ep);
    } catch (const Error& e) {
      send_error(res, 400, e.what());
    } catch (const std::exception& e) {
      send_error(res, 500, e.what());
    }
  });

  s.Get("/healthz", [](const Request&, Response& res) { res.set_content("ok\n", "text/plain"); });
  s.Get("/", [](const Request&, Response& res) { res.set_content(dashboard_html(), "text/html; charset=utf-8"); });
  s.Get("/api/version", [this](const Request&, Response& res) {
    send_json(res, {{"name", "maskwatch"},
                    {"version", MASKWATCH_VERSION},
                    {"model", config_.model},
                    {"classes", engine_.classes()},
                    {"cameras", engine_.camera_names()},
                    {"fleet", fleet_ != nullptr}});
  });
  s.Get("/api/config", [this](const Request&, Response& res) { send_json(res, config_.to_json(/*redact=*/true)); });
  s.Get("/api/stats", [this](const Request&, Response& res) { send_json(res, engine_.stats()); });
  s.Get("/metrics", [this](const Request&, Response& res) {
    res.set_content(
        fmt::format("# HELP maskwatch_build_info Version of this server.\n# TYPE maskwatch_build_info gauge\n"
                    "maskwatch_build_info{{version=\"{}\"}} 1\n{}",
                    MASKWATCH_VERSION, engine_.prometheus_metrics() + (more_metrics_ ? more_metrics_() : "")),
        "text/plain; version=0.0.4");
  });

  // Events: registered before the /api/<camera>/ routes, so "events" never reads as a camera.
  s.Get("/api/events/stream", [this](const Request& req, Response& res) {
    auto cursor = std::make_shared<uint64_t>(engine_.bus().head());
    auto client = log_client("event listener", req);
    auto last_write = std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::now());
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream", [this, cursor, last_write, client](size_t, httplib::DataSink& sink) {
          if (engine_.stopping()) {
            sink.done();
            return true;
          }
          uint64_t missed = 0;
          const auto lines = engine_.bus().read(cursor.get(), std::chrono::milliseconds(1000), &missed);
          std::string chunk;
          if (missed) chunk += fmt::format("event: missed\ndata: {}\n\n", missed);
          for (const auto& l : lines) chunk += "data: " + l + "\n\n";
          const auto now = std::chrono::steady_clock::now();
          if (chunk.empty() && now - *last_write > std::chrono::seconds(10)) chunk = ": keep-alive\n\n";
          if (chunk.empty()) return true;
          *last_write = now;
          return sink.write(chunk.data(), chunk.size());
        });
  });
  s.Get(R"(/api/events/(\d+)/snapshot\.jpg)", [this](const Request& req, Response& res) {
    const auto e = storage_.event(std::stoll(req.matches[1]));
    if (!e || (*e)["snapshot_file"].get<std::string>().empty()) return send_error(res, 404, "no such snapshot");
    const auto bytes = read_file_bytes(storage_.snapshot_dir() / (*e)["snapshot_file"].get<std::string>(), "snapshot");
    res.set_content(std::string(bytes.begin(), bytes.end()), "image/jpeg");
  });
  s.Get(R"(/api/events/(\d+))", [this](const Request& req, Response& res) {
    auto e = storage_.event(std::stoll(req.matches[1]));
    if (!e) return send_error(res, 404, "no such event");
    const int64_t id = (*e)["id"].get<int64_t>();
    (*e)["snapshot_url"] =
        (*e)["snapshot_file"].get<std::string>().empty() ? "" : fmt::format("/api/events/{}/snapshot.jpg", id);
    e->erase("snapshot_file");
    send_json(res, *e);
  });
  s.Get("/api/events", [this](const Request& req, Response& res) {
    EventQuery q;
    q.camera = req.get_param_value("camera");
    q.label = req.get_param_value("label");
    q.type = req.get_param_value("type");
    if (!q.camera.empty() && !engine_.has_camera(q.camera)) return send_error(res, 404, "unknown camera " + q.camera);
    if (req.has_param("after")) q.after = number_param(req, "after", 0);
    if (req.has_param("before")) q.before = number_param(req, "before", 0);
    q.limit = static_cast<int>(number_param(req, "limit", 100));
    if (q.limit < 1 || q.limit > 10000) return send_error(res, 400, "limit must be 1..10000");
    auto events = storage_.events(q);
    for (auto& e : events)
      e["snapshot_url"] =
          e.value("has_snapshot", false) ? fmt::format("/api/events/{}/snapshot.jpg", e["id"].get<int64_t>()) : "";
    send_json(res, events);
  });
  s.Get("/api/fleet", [this](const Request&, Response& res) {
    if (!fleet_) return send_error(res, 404, "no fleet configured (fleet.subscribe in the config)");
    send_json(res, fleet_->to_json());
  });
  s.Get("/api/compliance", [this](const Request& req, Response& res) {
    const std::string camera = req.get_param_value("camera");
    if (!camera.empty() && !engine_.has_camera(camera)) return send_error(res, 404, "unknown camera " + camera);
    const std::string interval = req.has_param("interval") ? req.get_param_value("interval") : "minute";
    const int64_t step = interval == "minute" ? 60 : interval == "hour" ? 3600 : interval == "day" ? 86400 : 0;
    if (!step) return send_error(res, 400, "interval must be minute, hour or day");
    const double after = number_param(req, "after", today_start()),
                 before = number_param(req, "before", unix_now() + 60);
    nlohmann::json out = nlohmann::json::array();
    for (const auto& b : storage_.compliance(camera, after, before, step)) out.push_back(b.to_json());
    send_json(res, out);
  });

  s.Get(R"(/api/([A-Za-z0-9_-]+)/latest\.jpg)", [this](const Request& req, Response& res) {
    const std::string camera = req.matches[1];
    if (!engine_.has_camera(camera)) return send_error(res, 404, "unknown camera " + camera);
    const int h = static_cast<int>(number_param(req, "h", 0)),
              quality = static_cast<int>(number_param(req, "quality", 0));
    if (h < 0 || h > 4320) return send_error(res, 400, "h must be 0..4320");
    if (quality < 0 || quality > 100) return send_error(res, 400, "quality must be 1..100");
    const auto jpeg = engine_.latest_jpeg(camera, req.get_param_value("boxes") != "0", h, quality);
    if (!jpeg) return send_error(res, 503, "no frame yet from camera " + camera);
    res.set_header("Cache-Control", "no-store");
    res.set_content(reinterpret_cast<const char*>(jpeg->bytes.data()), jpeg->bytes.size(), "image/jpeg");
  });
  s.Get(R"(/api/([A-Za-z0-9_-]+)/stream\.mjpeg)", [this](const Request& req, Response& res) {
    const std::string camera = req.matches[1];
    if (!engine_.has_camera(camera)) return send_error(res, 404, "unknown camera " + camera);
    const int h = static_cast<int>(number_param(req, "h", 0));
    const double fps =
        std::min(number_param(req, "fps", config_.http.stream_fps), static_cast<double>(config_.http.stream_fps));
    if (h < 0 || h > 4320 || !(fps > 0)) return send_error(res, 400, "h must be 0..4320 and fps > 0");
    if (!engine_.add_stream_client(camera)) {
      spdlog::warn("camera {}: MJPEG viewer {}:{} refused, {} viewers already", camera, req.remote_addr,
                   req.remote_port, config_.http.max_stream_clients);
      return send_error(
          res, 503, fmt::format("camera {} has its maximum of {} viewers", camera, config_.http.max_stream_clients));
    }
    // The viewer slot is released when the provider is destroyed (client gone or server stopping).
    auto slot = log_client(fmt::format("camera {}: MJPEG viewer", camera), req,
                           [this, camera] { engine_.remove_stream_client(camera); });
    auto last_seq = std::make_shared<int64_t>(0);
    auto next_due = std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::now());
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "multipart/x-mixed-replace; boundary=maskwatchframe",
        [this, camera, h, fps, slot, last_seq, next_due](size_t, httplib::DataSink& sink) {
          if (engine_.stopping()) {
            sink.done();
            return true;
          }
          std::this_thread::sleep_until(*next_due);
          if (!engine_.wait_for_frame(camera, *last_seq, std::chrono::milliseconds(1000))) return !engine_.stopping();
          const auto jpeg = engine_.latest_jpeg(camera, true, h);
          if (!jpeg) return true;
          *last_seq = jpeg->seq;
          *next_due =
              std::chrono::steady_clock::now() +
              std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(1.0 / fps));
          const std::string head = fmt::format(
              "--maskwatchframe\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n", jpeg->bytes.size());
          return sink.write(head.data(), head.size()) &&
                 sink.write(reinterpret_cast<const char*>(jpeg->bytes.data()), jpeg->bytes.size()) &&
                 sink.write("\r\n", 2);
        });
  });
}

}  // namespace maskwatch
