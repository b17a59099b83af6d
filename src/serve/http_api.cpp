#include "serve/http_api.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <functional>
#include <memory>
#include <regex>
#include <thread>
#include <utility>
#include <vector>

#include "serve/dashboard_page.h"
#include "serve/guarded_server.h"
#include "serve/http_auth.h"
#include "serve/http_params.h"
#include "serve/http_reply.h"
#include "util/error.h"
#include "util/files.h"
#include "util/stopwatch.h"

namespace maskwatch {

using httplib::Request;
using httplib::Response;

namespace {

// The two streams' types: their GET and their HEAD say the same.
constexpr const char* kEventStreamType = "text/event-stream";
constexpr const char* kMjpegType = "multipart/x-mixed-replace; boundary=maskwatchframe";

// An MJPEG viewer gets at least one frame every 10 s, and waits in naps of this length.
constexpr double kMinStreamFps = 0.1;
constexpr std::chrono::milliseconds kStreamNap{200};

// The URLs of an event's pictures (from has_snapshot/has_clip or the file columns); no clip
// URL for a viewer, who may not watch it (the dashboard offered a button that answered 403).
void add_picture_urls(nlohmann::json& e, bool clips) {
  const int64_t id = e["id"].get<int64_t>();
  const auto has = [&](const char* flag, const char* file) {
    return e.value(flag, false) || !e.value(file, std::string()).empty();
  };
  e["snapshot_url"] = has("has_snapshot", "snapshot_file") ? fmt::format("/api/events/{}/snapshot.jpg", id) : "";
  if (e.value("type", "") != "status")
    e["clip_url"] = clips && has("has_clip", "clip_file") ? fmt::format("/api/events/{}/clip.mp4", id) : "";
  e.erase("snapshot_file");
  e.erase("clip_file");
  e.erase("has_clip");
}

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

void http_metrics(PromText& out, const nlohmann::json& h) {
  out.family("maskwatch_http_connections", "gauge", "Open HTTP connections.")
      .sample("maskwatch_http_connections", h["connections"].get<double>());
  out.family("maskwatch_http_streams", "gauge", "Open MJPEG viewers and event listeners.")
      .sample("maskwatch_http_streams", h["streams"].get<double>());
  out.family("maskwatch_http_refused_total", "counter", "Connections and streams refused with 503.")
      .sample("maskwatch_http_refused_total", h["refused_connections"].get<double>(), {{"reason", "per_client"}})
      .sample("maskwatch_http_refused_total", h["refused_busy"].get<double>(), {{"reason", "busy"}})
      .sample("maskwatch_http_refused_total", h["refused_streams"].get<double>(), {{"reason", "streams"}});
  out.family("maskwatch_http_slow_closed_total", "counter", "Connections closed without a complete request in time.")
      .sample("maskwatch_http_slow_closed_total", h["closed_slow"].get<double>());
}

}  // namespace

HttpApi::HttpApi(const ServeConfig& config, Engine& engine, Storage& storage)
    : config_(config),
      engine_(engine),
      storage_(storage),
      guard_(std::make_unique<ConnectionGuard>(config.http.max_connections_per_client, config.http.request_timeout_s)),
      // Each connection holds a pool thread. Streams (MJPEG, SSE) are capped at max_streams and
      // one client address at max_connections_per_client, slow requests are closed after
      // request_timeout_s: the caps are reached with 16 threads still free for everyone else.
      // The query read again and the library's ranges dropped (mend_parsed_request says why);
      // a form body is parsed by the library after this: /login, the one route that reads a
      // form, parses its body itself.
      server_(std::make_unique<GuardedServer>(
          *guard_, config.http.max_streams + config.http.max_connections_per_client + 16, mend_parsed_request)) {
  server_->set_write_timeout(5, 0);  // a stalled viewer frees its thread within seconds
  server_->set_read_timeout(5, 0);
  server_->set_keep_alive_timeout(5);
  // The API's bodies are a word or a token: a larger one is refused (413) unread. There was no
  // limit, and /healthz and /login are open to anyone.
  server_->set_payload_max_length(kMaxRequestBody);
  // A client that asks first (curl does for bodies over 1 MiB) is told before it sends one.
  server_->set_expect_100_continue_handler([](const Request& req, Response& res) {
    const int status = refused_body(req, res);
    return status ? status : 100;
  });
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
  guard_->close_all();  // open streams and keep-alive connections end now, not at their time-outs
  if (server_ && server_->is_running()) server_->stop();
}

std::shared_ptr<void> HttpApi::take_stream_slot() {
  int n = streams_.load();
  do {
    if (n >= config_.http.max_streams) return nullptr;
  } while (!streams_.compare_exchange_weak(n, n + 1));
  return std::shared_ptr<void>(&streams_, [](std::atomic<int>* s) { --*s; });
}

void HttpApi::refuse_stream(Response& res, const std::string& log_line, const std::string& message) {
  ++refused_streams_;
  refusal_log_.log(spdlog::level::warn, log_line, "streams refused");
  res.set_header("Retry-After", "5");
  refuse_and_close(res, 503, message);
}

bool HttpApi::answered_head(const Request& req, Response& res, const char* content_type) {
  if (req.method != "HEAD") return false;
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(content_type, [](size_t, httplib::DataSink& sink) {
    sink.done();  // (not called for a HEAD: only its headers are sent)
    return true;
  });
  return true;
}

void HttpApi::refuse_stream_at_cap(Response& res, const std::string& what, const Request& req) {
  const int cap = config_.http.max_streams;
  refuse_stream(
      res, fmt::format("{} {}:{} refused: {} streams open (http.max_streams)", what, req.remote_addr, req.remote_port, cap),
      fmt::format("the server has its maximum of {} streams open (MJPEG viewers and event listeners)", cap));
}

bool HttpApi::known_label(const std::string& label) const {
  const auto& classes = engine_.classes();
  if (label == "uncertain" || std::find(classes.begin(), classes.end(), label) != classes.end()) return true;
  for (const auto s : {CameraStatus::Starting, CameraStatus::Online, CameraStatus::Offline, CameraStatus::Disabled})
    if (label == status_name(s)) return true;
  for (const auto& rule : config_.alerts)
    if (label == rule.name) return true;
  return storage_.has_label(label);
}

nlohmann::json HttpApi::http_stats() const {
  auto j = guard_->stats();
  j["streams"] = streams_.load();
  j["max_streams"] = config_.http.max_streams;
  j["refused_streams"] = refused_streams_.load();
  return j;
}

// Registers the routes and keeps every route's pattern and methods, so a known path asked
// with another method is told 405 and which methods it takes (RFC 9110 15.5.6), not "no such
// endpoint".
class RouteTable {
 public:
  explicit RouteTable(httplib::Server& server) : server_(server) {}
  void get(const std::string& pattern, httplib::Server::Handler handler) {
    known_->emplace_back(std::regex(pattern), "GET, HEAD");  // httplib answers HEAD with the GET handler
    server_.Get(pattern, std::move(handler));
  }
  void post(const std::string& pattern, httplib::Server::Handler handler) {
    known_->emplace_back(std::regex(pattern), "POST");
    server_.Post(pattern, std::move(handler));
  }
  // The methods that `path` takes ("" when no route matches it); valid for the server's life.
  std::function<std::string(const std::string&)> allowed() const {
    return [known = known_](const std::string& path) {
      std::string allow;
      for (const auto& [pattern, methods] : *known)
        if (std::regex_match(path, pattern) && allow.find(methods) == std::string::npos)
          allow += (allow.empty() ? "" : ", ") + methods;
      return allow;
    };
  }

 private:
  httplib::Server& server_;
  std::shared_ptr<std::vector<std::pair<std::regex, std::string>>> known_ =
      std::make_shared<std::vector<std::pair<std::regex, std::string>>>();
};

void HttpApi::routes() {
  RouteTable table(*server_);
  auto gate = std::make_shared<const AuthGate>(config_.http.auth);
  access_routes(table, gate);
  server_routes(table);
  // Events: registered before the /api/<camera>/ routes, so "events" never reads as a camera.
  event_routes(table, gate);
  camera_routes(table);
}

// Bodies, credentials and roles are checked before any route; errors are answered in JSON.
void HttpApi::access_routes(RouteTable& table, const std::shared_ptr<const AuthGate>& gate) {
  auto& s = *server_;
  s.set_pre_routing_handler([gate](const Request& req, Response& res) {
    // Bodies are bounded before any is read, on every path and method (/healthz and /login
    // are open to anyone): httplib 0.11 reads a chunked body without limit, and skips an
    // oversized declared one by reading all of it.
    if (refused_body(req, res)) return httplib::Server::HandlerResponse::Handled;
    if (!gate->enabled() || req.path == "/healthz") return httplib::Server::HandlerResponse::Unhandled;
    if (gate->has_login() && req.path == "/login" && req.method == "POST")
      return httplib::Server::HandlerResponse::Unhandled;  // checks the token itself, once the body is read
    if (gate->has_login() && req.path == "/" && req.has_param("token")) {
      // A link with the token: the cookie, and the dashboard's URL without the token.
      if (const Role r = gate->token_role(req.get_param_value("token")); r != Role::None)
        gate->let_in(res, r);
      else
        gate->refuse(req, res, /*wrong_token=*/true);
      return httplib::Server::HandlerResponse::Handled;
    }
    const Role role = gate->role(req);
    if (role == Role::None) {
      gate->refuse(req, res);
      return httplib::Server::HandlerResponse::Handled;
    }
    if (role == Role::Viewer && admin_only(req)) {
      AuthGate::forbid(req, res);
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  if (gate->has_login())
    table.post("/login", [gate](const Request& req, Response& res) {
      const auto form = parse_query(req.body);  // not the library's parse (see parse_query)
      const auto token = form.find("token");
      if (const Role r = gate->token_role(token == form.end() ? "" : token->second); r != Role::None)
        gate->let_in(res, r);
      else
        gate->refuse(req, res, /*wrong_token=*/true);
    });
  // httplib's own refusals come with no body: say why, in the API's JSON. Every one but 404
  // (400, 414, 416, ...) ends the connection: after a request it could not parse, what follows
  // may not be a request.
  s.set_error_handler(
      httplib::Server::HandlerWithResponse([allowed = table.allowed()](const Request& req, Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        // httplib has no routes for TRACE and CONNECT and answers them 400: to the client they
        // are a method this path does not take, as any other (405 with Allow, or 404); closed
        // after, as every reply the library made before routing.
        if (res.status == 400 && (req.method == "TRACE" || req.method == "CONNECT")) {
          const std::string allow = allowed(req.path);
          if (!allow.empty()) res.set_header("Allow", allow);
          refuse_and_close(res, allow.empty() ? 404 : 405,
                           allow.empty() ? fmt::format("no such endpoint: {} {}", req.method, req.path.substr(0, 200))
                                         : fmt::format("{} takes {}, not {}", req.path.substr(0, 200), allow,
                                                       req.method));
          return httplib::Server::HandlerResponse::Handled;
        }
        std::string why = fmt::format("HTTP {}", res.status);
        std::string allow = res.status == 404 ? allowed(req.path) : "";
        if (allow.find(req.method) != std::string::npos) allow.clear();  // its own method: a real 404
        if (res.status == 404 && !allow.empty()) {
          res.status = 405;
          res.set_header("Allow", allow);
          why = fmt::format("{} takes {}, not {}", req.path.substr(0, 200), allow, req.method);
        } else if (res.status == 404) {
          why = fmt::format("no such endpoint: {} {}", req.method, req.path.substr(0, 200));
        } else {
          refuse_and_close(res, res.status, why);
          return httplib::Server::HandlerResponse::Handled;
        }
        send_json(res, {{"error", why}}, res.status);
        return httplib::Server::HandlerResponse::Handled;
      }));
  s.set_exception_handler([](const Request&, Response& res, std::exception_ptr ep) {
    try {
      std::rethrow_exception(ep);
    } catch (const StorageUnavailable& e) {
      send_error(res, 503, e.what());
    } catch (const Error& e) {
      send_error(res, 400, e.what());
    } catch (const std::exception& e) {
      send_error(res, 500, e.what());
    }
  });
}

// The server itself: health, dashboard page, version, configuration, statistics, metrics, fleet.
void HttpApi::server_routes(RouteTable& table) {
  table.get("/healthz", [](const Request&, Response& res) { res.set_content("ok\n", "text/plain"); });
  table.get("/", [](const Request&, Response& res) { res.set_content(dashboard_html(), "text/html; charset=utf-8"); });
  table.get("/api/version", [this](const Request&, Response& res) {
    send_json(res, {{"name", "maskwatch"},
                    {"version", MASKWATCH_VERSION},
                    // The file it runs ("" said nothing for the shipped one).
                    {"model", config_.model_path()},
                    {"classes", engine_.classes()},
                    {"cameras", engine_.camera_names()},
                    {"fleet", fleet_ != nullptr}});
  });
  table.get("/api/config", [this](const Request&, Response& res) {
    send_json(res, hooks_.view ? hooks_.view() : config_.to_json(/*redact=*/true));
  });
  table.post("/api/config/reload", [this](const Request&, Response& res) {
    if (!hooks_.reload) return send_error(res, 404, "live reconfiguration is not available here");
    const auto [status, body] = hooks_.reload();
    send_json(res, body, status);
  });
  table.get("/api/stats", [this](const Request&, Response& res) {
    auto j = engine_.stats();
    j["http"] = http_stats();
    send_json(res, j);
  });
  table.get("/metrics", [this](const Request&, Response& res) {
    PromText out;
    out.family("maskwatch_build_info", "gauge", "Version of this server.")
        .sample("maskwatch_build_info", 1, {{"version", MASKWATCH_VERSION}});
    engine_.prometheus_metrics(out);
    http_metrics(out, http_stats());
    if (more_metrics_) more_metrics_(out);
    res.set_content(out.str(), "text/plain; version=0.0.4");
  });
  table.get("/api/fleet", [this](const Request&, Response& res) {
    if (!fleet_) return send_error(res, 404, "no fleet configured (fleet.subscribe in the config)");
    send_json(res, fleet_->to_json());
  });
}

// Live events and the history: lists, one event, its snapshot and clip.
void HttpApi::event_routes(RouteTable& table, const std::shared_ptr<const AuthGate>& gate) {
  // Clips are video of people: admins only, and so is their URL in any event (history and live).
  const auto may_watch_clips = [gate](const Request& req) { return gate->role(req) == Role::Admin; };
  table.get("/api/events/stream", [this, may_watch_clips](const Request& req, Response& res) {
    if (answered_head(req, res, kEventStreamType)) return;
    auto slot = take_stream_slot();
    if (!slot) return refuse_stream_at_cap(res, "event listener", req);
    auto cursor = std::make_shared<uint64_t>(engine_.bus().head());
    auto client = log_client("event listener", req, [slot] {});  // the slot lives as long as the listener
    auto last_write = std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::now());
    res.set_header("Cache-Control", "no-cache");
    const bool clips = may_watch_clips(req);
    res.set_chunked_content_provider(kEventStreamType, [this, cursor, last_write, client, clips](
                                                              size_t, httplib::DataSink& sink) {
      if (!sink.is_writable()) return false;  // the listener has gone: free its slot now
      if (engine_.stopping()) {
        sink.done();
        return true;
      }
      uint64_t missed = 0;
      const auto events = engine_.bus().read(cursor.get(), std::chrono::milliseconds(1000), &missed);
      std::string chunk;
      if (missed) chunk += fmt::format("event: missed\ndata: {}\n\n", missed);
      for (const auto& e : events)
        chunk += "data: " + to_json(*e, engine_.classes(), clips ? ClipUrls::Shown : ClipUrls::Hidden).dump() + "\n\n";
      const auto now = std::chrono::steady_clock::now();
      if (chunk.empty() && now - *last_write > std::chrono::seconds(10)) chunk = ": keep-alive\n\n";
      if (chunk.empty()) return true;
      *last_write = now;
      return sink.write(chunk.data(), chunk.size());
    });
  });
  table.get(R"(/api/events/(\d+)/snapshot\.jpg)", [this](const Request& req, Response& res) {
    const auto e = storage_.event(event_id(req.matches[1]));
    if (!e || (*e)["snapshot_file"].get<std::string>().empty()) return send_error(res, 404, "no such snapshot");
    const auto bytes = read_file_bytes(storage_.snapshot_dir() / (*e)["snapshot_file"].get<std::string>(), "snapshot");
    res.set_content(std::string(bytes.begin(), bytes.end()), "image/jpeg");
  });
  table.get(R"(/api/events/(\d+)/clip\.mp4)", [this](const Request& req, Response& res) { send_clip(req, res); });
  table.get(R"(/api/events/(\d+))", [this, may_watch_clips](const Request& req, Response& res) {
    auto e = storage_.event(event_id(req.matches[1]));
    if (!e) return send_error(res, 404, "no such event");
    add_picture_urls(*e, may_watch_clips(req));
    send_json(res, *e);
  });
  table.get("/api/events", [this, may_watch_clips](const Request& req, Response& res) {
    EventQuery q;
    q.camera = req.get_param_value("camera");
    q.label = req.get_param_value("label");
    q.type = req.get_param_value("type");
    if (!q.camera.empty() && !known_camera(q.camera)) return send_error(res, 404, "unknown camera " + q.camera);
    if (!q.label.empty() && !known_label(q.label))
      return send_error(res, 400,
                        fmt::format("parameter label={} is no verdict ({}, uncertain), camera status (starting, "
                                    "online, offline, disabled) nor alert rule, and no event in history has it",
                                    q.label.substr(0, 100), fmt::join(engine_.classes(), ", ")));
    if (!q.type.empty() && q.type != "track" && q.type != "status" && q.type != "alert")
      return send_error(res, 400, fmt::format("parameter type={} must be track, status or alert", q.type));
    if (req.has_param("after")) q.after = number_param(req, "after", 0);
    if (req.has_param("before")) q.before = number_param(req, "before", 0);
    q.limit = int_param(req, "limit", 100, 1, 10000);
    if (req.has_param("after") && req.has_param("before") && q.after > q.before)
      return send_error(res, 400, "parameter after must not be later than before");
    auto events = storage_.events(q);
    const bool clips = may_watch_clips(req);
    for (auto& e : events) add_picture_urls(e, clips);
    send_json(res, events);
  });
}

// Per camera: the compliance report, detection on or off, the latest frame and the MJPEG stream.
void HttpApi::camera_routes(RouteTable& table) {
  table.get("/api/compliance", [this](const Request& req, Response& res) {
    const std::string camera = req.get_param_value("camera");
    if (!camera.empty() && !known_camera(camera)) return send_error(res, 404, "unknown camera " + camera);
    const std::string zone = req.get_param_value("zone");
    if (!zone.empty() && !engine_.has_zone(camera, zone) && !storage_.has_zone(camera, zone))
      return send_error(res, 404, "no include zone " + zone + (camera.empty() ? "" : " on camera " + camera));
    const std::string interval = req.has_param("interval") ? req.get_param_value("interval") : "minute";
    const int64_t step = interval == "minute" ? 60 : interval == "hour" ? 3600 : interval == "day" ? 86400 : 0;
    if (!step) return send_error(res, 400, "interval must be minute, hour or day");
    const double after = number_param(req, "after", today_start()),
                 before = number_param(req, "before", unix_now() + 60);
    if (after > before) return send_error(res, 400, "parameter after must not be later than before");
    // Faces still in view count too (Engine::compliance): a person in front of the camera for
    // minutes is not missing from "today".
    const auto buckets = engine_.compliance(camera, after, before, step, zone);
    nlohmann::json out = nlohmann::json::array();
    for (const auto& b : buckets) out.push_back(b.to_json());
    send_json(res, out);
  });

  // Detection on or off (admin): as MQTT's <prefix>/<camera>/detect/set. Body or ?on=: on/off.
  table.post(R"(/api/([A-Za-z0-9_-]+)/detect)", [this](const Request& req, Response& res) {
    const std::string camera = req.matches[1];
    // ?on=off, or the body: plain text, or what `curl -d on` sends (a form field named "on").
    std::string value = req.get_param_value("on");
    if (value.empty()) value = req.body;
    for (auto& c : value) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back()))) value.pop_back();
    if (value != "on" && value != "off" && value != "1" && value != "0")
      return send_error(res, 400, "say on or off (body or ?on=)");
    if (!engine_.set_detect(camera, value == "on" || value == "1")) return send_error(res, 404, "no such camera");
    send_json(res, {{"camera", camera}, {"detect", engine_.detect_enabled(camera)}});
  });
  table.get(R"(/api/([A-Za-z0-9_-]+)/latest\.jpg)", [this](const Request& req, Response& res) {
    const std::string camera = req.matches[1];
    if (!engine_.has_camera(camera)) return send_error(res, 404, "unknown camera " + camera);
    const int h = int_param(req, "h", 0, 0, 4320),
              quality = int_param(req, "quality", 0, 1, 100);  // 0: the configured quality
    const std::string boxes = req.has_param("boxes") ? req.get_param_value("boxes") : "1";
    if (boxes != "0" && boxes != "1") return send_error(res, 400, "parameter boxes must be 0 or 1");
    const auto jpeg = engine_.latest_jpeg(camera, boxes == "1", h, quality);
    if (!jpeg) return send_error(res, 503, "no frame yet from camera " + camera);
    res.set_header("Cache-Control", "no-store");
    res.set_content(reinterpret_cast<const char*>(jpeg->bytes.data()), jpeg->bytes.size(), "image/jpeg");
  });
  table.get(R"(/api/([A-Za-z0-9_-]+)/stream\.mjpeg)",
            [this](const Request& req, Response& res) { stream_mjpeg(req, res); });
}

void HttpApi::send_clip(const Request& req, Response& res) {
  const int64_t id = event_id(req.matches[1]);
  const auto e = storage_.event(id);
  const std::string file = e ? (*e)["clip_file"].get<std::string>() : "";
  if (file.empty()) return send_error(res, 404, fmt::format("event {} has no clip", id));
  const auto path = storage_.clip_dir() / file;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    if (engine_.clip_pending(file)) {
      // The clip is around the time its name starts with (an alert's, or a track's first
      // moment without a mask); a backlog of clips can make it later than this.
      const double ready = ClipRecorder::time_of(file) + config_.clips.after_s + 1;
      const int wait_s = std::max(1, static_cast<int>(std::ceil(ready - unix_now())));
      res.set_header("Retry-After", std::to_string(wait_s));
      return send_error(res, 404,
                        fmt::format("the clip of event {} is still being recorded; ready in about {} s", id, wait_s));
    }
    return send_error(res, 404,
                      fmt::format("the clip of event {} was not kept (removed by retention, or it could "
                                  "not be written: see the log)",
                                  id));
  }
  // Streamed from the file (clips can be large; browsers ask for ranges of it).
  const auto size = std::filesystem::file_size(path, ec);
  auto in = std::make_shared<std::ifstream>(path, std::ios::binary);
  if (ec || !*in) return send_error(res, 404, fmt::format("the clip of event {} cannot be read", id));
  // Ranges are served here (byte_range), not by the library (mend_parsed_request dropped its own).
  const auto range = byte_range(req.get_header_value("Range"), size);
  res.set_header("Accept-Ranges", "bytes");
  if (range && !range->satisfiable) {
    res.set_header("Content-Range", fmt::format("bytes */{}", size));
    return send_error(res, 416, fmt::format("{} is outside the clip's {} bytes", req.get_header_value("Range"), size));
  }
  const uint64_t first = range ? range->first : 0, count = range ? range->last - range->first + 1 : size;
  if (range) {
    res.status = 206;
    res.set_header("Content-Range", fmt::format("bytes {}-{}/{}", range->first, range->last, size));
  }
  res.set_content_provider(static_cast<size_t>(count), "video/mp4",
                           [in, first](size_t offset, size_t length, httplib::DataSink& sink) {
                             std::vector<char> buf(std::min<size_t>(length, 64 * 1024));
                             in->clear();
                             in->seekg(static_cast<std::streamoff>(first + offset));
                             in->read(buf.data(), static_cast<std::streamsize>(buf.size()));
                             const auto got = static_cast<size_t>(in->gcount());
                             return got > 0 && sink.write(buf.data(), got);
                           });
}

void HttpApi::stream_mjpeg(const Request& req, Response& res) {
  const std::string camera = req.matches[1];
  if (!engine_.has_camera(camera)) return send_error(res, 404, "unknown camera " + camera);
  const int h = int_param(req, "h", 0, 0, 4320);
  const double fps =
      std::min(number_param(req, "fps", config_.http.stream_fps), static_cast<double>(config_.http.stream_fps));
  // (fps=1e-9 had put the next frame 31 years away, holding a thread and two slots for good)
  if (!(fps >= kMinStreamFps))
    return send_error(res, 400, fmt::format("parameter fps must be at least {}", kMinStreamFps));
  if (answered_head(req, res, kMjpegType)) return;
  auto stream_slot = take_stream_slot();
  if (!stream_slot)
    return refuse_stream_at_cap(res, fmt::format("camera {}: MJPEG viewer", camera), req);
  if (!engine_.add_stream_client(camera))
    return refuse_stream(
        res,
        fmt::format("camera {}: MJPEG viewer {}:{} refused, {} viewers already", camera, req.remote_addr,
                    req.remote_port, config_.http.max_stream_clients),
        fmt::format("camera {} has its maximum of {} viewers", camera, config_.http.max_stream_clients));
  // The viewer slot is released when the provider is destroyed (client gone or server stopping).
  auto slot = log_client(fmt::format("camera {}: MJPEG viewer", camera), req,
                         [this, camera, stream_slot] { engine_.remove_stream_client(camera); });
  auto last_seq = std::make_shared<int64_t>(0);
  auto next_due = std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::now());
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      kMjpegType,
      [this, camera, h, fps, slot, last_seq, next_due](size_t, httplib::DataSink& sink) {
        // Until the next frame is due, in short naps: a shutdown or a viewer that left ends
        // the stream within one nap, not when the frame would have been due.
        for (auto now = std::chrono::steady_clock::now(); now < *next_due; now = std::chrono::steady_clock::now()) {
          if (engine_.stopping()) break;
          if (!sink.is_writable()) return false;  // the viewer has gone: free its slots now
          std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(*next_due - now, kStreamNap));
        }
        if (engine_.stopping()) {
          sink.done();
          return true;
        }
        if (!engine_.wait_for_frame(camera, *last_seq, std::chrono::milliseconds(1000))) {
          if (!engine_.has_camera(camera))
            sink.done();  // removed by a reconfiguration: the stream ends
          else if (!sink.is_writable())
            return false;  // an offline camera's viewer that left
          return !engine_.stopping();
        }
        const auto jpeg = engine_.latest_jpeg(camera, true, h);
        if (!jpeg) {
          // A camera a reconfiguration replaced carries its predecessor's frame number but has
          // no frame yet: a nap, not a loop that took a core until its first frame.
          *next_due = std::chrono::steady_clock::now() + kStreamNap;
          return true;
        }
        *last_seq = jpeg->seq;
        *next_due = std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                                           std::chrono::duration<double>(1.0 / fps));
        const std::string head = fmt::format(
            "--maskwatchframe\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n", jpeg->bytes.size());
        return sink.write(head.data(), head.size()) &&
               sink.write(reinterpret_cast<const char*>(jpeg->bytes.data()), jpeg->bytes.size()) &&
               sink.write("\r\n", 2);
      });
}

}  // namespace maskwatch
