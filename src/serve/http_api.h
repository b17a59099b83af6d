// The HTTP side of `serve` (cpp-httplib): JSON API, MJPEG and JPEG views, server-sent
// events, Prometheus metrics and the dashboard page. Routes are listed in README "serve".
// Auth (bearer token or basic) guards everything except /healthz when configured.
// cpp-httplib keeps one pool thread per connection; GuardedServer (guarded_server.h) and
// the stream cap here keep streams, slow clients, greedy clients and floods from taking them
// all, so /healthz and /api/stats always have a thread.
#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "serve/config.h"
#include "serve/engine.h"
#include "serve/fleet.h"
#include "serve/storage.h"
#include "util/log_text.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace maskwatch {

class AuthGate;
class ConnectionGuard;
class RouteTable;

class HttpApi {
 public:
  HttpApi(const ServeConfig& config, Engine& engine, Storage& storage);
  ~HttpApi();
  // Binds host:port (port 0 = any free port); throws Error when it cannot. Returns the port.
  int bind(const std::string& host, int port);
  void serve_forever();  // returns after stop()
  void stop();
  // More Prometheus text for /metrics (e.g. the MQTT bridge's); set before serve_forever().
  void add_metrics(std::function<void(PromText&)> more) { more_metrics_ = std::move(more); }
  // Serves /api/fleet from this view (404 without one); set before serve_forever().
  void set_fleet(const FleetView* fleet) { fleet_ = fleet; }
  // Live reconfiguration (admin): POST /api/config/reload calls `reload`, which answers
  // {HTTP status, JSON}; `view` gives what /api/config shows (the config as it now runs).
  // Set before serve_forever(); without them, reload is 404 and /api/config the first config.
  struct ConfigHooks {
    std::function<std::pair<int, nlohmann::json>()> reload;
    std::function<nlohmann::json()> view;
  };
  void set_config_hooks(ConfigHooks hooks) { hooks_ = std::move(hooks); }

 private:
  void routes();
  void access_routes(RouteTable& table, const std::shared_ptr<const AuthGate>& gate);
  void server_routes(RouteTable& table);
  void event_routes(RouteTable& table, const std::shared_ptr<const AuthGate>& gate);
  void camera_routes(RouteTable& table);
  // GET /api/events/<id>/clip.mp4: the file in ranges, or why there is none (yet).
  void send_clip(const httplib::Request& req, httplib::Response& res);
  // GET /api/<camera>/stream.mjpeg: one frame per 1/fps while the viewer stays.
  void stream_mjpeg(const httplib::Request& req, httplib::Response& res);
  // A slot for one long-lived stream (MJPEG viewer or event listener) out of
  // http.max_streams; nullptr when all are taken. Released when the handle goes.
  std::shared_ptr<void> take_stream_slot();
  // 503 for a stream beyond a cap (every stream holds a server thread for its life), counted in
  // refused_streams; the connection ends with it (a refused viewer that kept it open held a
  // thread for 5 s more). One warning per 10 s at most, with how many came in between: a
  // client that opens streams again and again (a viewer's login is enough) cannot flood the log.
  void refuse_stream(httplib::Response& res, const std::string& log_line, const std::string& message);
  // ... beyond http.max_streams: `what` names the stream in the log line.
  void refuse_stream_at_cap(httplib::Response& res, const std::string& what, const httplib::Request& req);
  // A HEAD on a stream (httplib answers it with the GET route): the stream's headers, no slot
  // taken, no viewer logged (a monitor's probe had been logged as a viewer that came and went).
  static bool answered_head(const httplib::Request& req, httplib::Response& res, const char* content_type);
  nlohmann::json http_stats() const;
  // Configured now, or in the history (a camera a reconfiguration removed): its history stays queryable.
  bool known_camera(const std::string& name) const { return engine_.has_camera(name) || storage_.has_camera(name); }
  // A verdict, "uncertain", a camera status, a configured alert rule, or in the history (an
  // old rule's name): anything else is a typo that would answer [] as if nothing happened.
  bool known_label(const std::string& label) const;
  const ServeConfig& config_;
  Engine& engine_;
  Storage& storage_;
  std::unique_ptr<ConnectionGuard> guard_;  // before server_: outlives it
  std::unique_ptr<httplib::Server> server_;
  std::atomic<int> streams_{0};
  std::atomic<int64_t> refused_streams_{0};
  LogThrottle refusal_log_{std::chrono::seconds(10)};
  std::function<void(PromText&)> more_metrics_;
  const FleetView* fleet_ = nullptr;
  ConfigHooks hooks_;
};

}  // namespace maskwatch
