#include "serve/http_api.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <httplib.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <thread>
#include <tuple>

#include "serve/dashboard_page.h"
#include "util/error.h"
#include "util/files.h"
#include "util/sha256.h"
#include "util/stopwatch.h"

namespace maskwatch {

using Clock = std::chrono::steady_clock;

// Open connections of the server, by socket and by client address. Lets one address hold
// at most `per_client` connections (each one is a pool thread) and closes every socket at
// once when the server stops, so no thread waits out a keep-alive or a stream.
class ConnectionGuard {
 public:
  ConnectionGuard(int per_client, double request_timeout_s)
      : per_client_(per_client),
        request_timeout_(
            std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(request_timeout_s))) {}

  // False when `addr` has its maximum open already, or the server is stopping.
  bool admit(int sock, const std::string& addr) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = per_addr_.try_emplace(addr, 0).first;
    if (stopping_ || it->second >= per_client_) {
      if (it->second == 0) per_addr_.erase(it);
      ++refused_;
      // One line when an address reaches its cap, not one per refused connection.
      if (!stopping_ && capped_.insert(addr).second)
        spdlog::warn("http: client {} has {} connections open (http.max_connections_per_client); refusing more", addr,
                     per_client_);
      return false;
    }
    ++it->second;
    socks_.insert(sock);
    return true;
  }

  // Called before the socket is closed: close_all() never touches a reused descriptor.
  void leave(int sock, const std::string& addr) {
    std::lock_guard<std::mutex> lock(mutex_);
    socks_.erase(sock);
    auto it = per_addr_.find(addr);
    if (it != per_addr_.end() && --it->second < per_client_) capped_.erase(addr);
    if (it != per_addr_.end() && it->second <= 0) per_addr_.erase(it);
  }

  // shutdown() makes every blocked poll/recv/send of the connection threads return at once.
  void close_all() {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    for (int s : socks_) ::shutdown(s, SHUT_RDWR);
  }

  bool stopping() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stopping_;
  }
  void count_slow() { ++closed_slow_; }
  int per_client() const { return per_client_; }
  Clock::duration request_timeout() const { return request_timeout_; }

  nlohmann::json stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return {{"connections", socks_.size()}, {"refused_connections", refused_}, {"closed_slow", closed_slow_.load()}};
  }

 private:
  const int per_client_;
  const Clock::duration request_timeout_;
  mutable std::mutex mutex_;
  std::set<int> socks_;
  std::map<std::string, int> per_addr_;
  std::set<std::string> capped_;
  bool stopping_ = false;
  int64_t refused_ = 0;
  std::atomic<int64_t> closed_slow_{0};
};

namespace {

int to_ms(time_t sec, time_t usec) { return static_cast<int>(sec * 1000 + usec / 1000); }

// poll() for one socket; true when `events` (or a hang-up) came within `ms`.
bool wait_socket(int sock, short events, int ms) {
  pollfd p{sock, events, 0};
  int r;
  do r = ::poll(&p, 1, ms);
  while (r < 0 && errno == EINTR);
  return r > 0;
}

// A socket's numeric address and port (getpeername: the client's, as cpp-httplib writes them
// into Request; getsockname: ours).
std::pair<std::string, int> address_of(int sock, int (*which)(int, sockaddr*, socklen_t*)) {
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  char host[NI_MAXHOST] = "", port[NI_MAXSERV] = "0";
  if (which(sock, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    getnameinfo(reinterpret_cast<sockaddr*>(&a), len, host, sizeof host, port, sizeof port,
                NI_NUMERICHOST | NI_NUMERICSERV);
  return {host, std::atoi(port)};
}
std::pair<std::string, int> peer_of(int sock) { return address_of(sock, ::getpeername); }

// httplib::Stream over one accepted socket, as the library's own SocketStream (buffered
// reads, poll() time-outs, no SIGPIPE), plus a deadline for reading the request: a read
// that would wait past it fails, so a client that sends its head or body a byte at a time
// (slowloris) is dropped after http.request_timeout_s instead of holding a thread for
// ever. Handlers never read (streams only write), so the deadline needs no clearing.
class GuardedStream : public httplib::Stream {
 public:
  GuardedStream(int sock, std::string addr, int port, int read_ms, int write_ms)
      : sock_(sock), addr_(std::move(addr)), port_(port), read_ms_(read_ms), write_ms_(write_ms) {}

  void set_deadline(Clock::time_point t) { deadline_ = t; }
  // A read of the request found nothing before the deadline (or the read time-out).
  bool request_timed_out() const { return request_timed_out_; }
  // Waits for the first byte of a request (also between keep-alive requests) until the deadline.
  bool wait_for_request() const { return off_ < len_ || wait_socket(sock_, POLLIN, read_wait_ms()); }

  // Past the deadline nothing more is read, even from a client that keeps sending (a body
  // streamed at line rate was read for as long as it came).
  bool is_readable() const override {
    if (Clock::now() < deadline_ && (off_ < len_ || wait_socket(sock_, POLLIN, read_wait_ms()))) return true;
    request_timed_out_ = true;
    return false;
  }
  // A client that has gone (closed its end) is not writable either: a stream ends as soon as
  // its provider asks, not at the next write that fails (up to 10 s later for an idle event
  // stream), so a reloading dashboard does not pile up slots against the caps.
  bool is_writable() const override { return !peer_closed() && wait_socket(sock_, POLLOUT, write_ms_); }
  bool peer_closed() const {
    pollfd p{sock_, POLLIN | POLLRDHUP, 0};
    if (::poll(&p, 1, 0) <= 0) return false;
    if (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) return true;
    char c;
    return off_ == len_ && ::recv(sock_, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
  }
  ssize_t read(char* ptr, size_t size) override {
    if (off_ == len_) {
      if (!is_readable()) return -1;
      ssize_t n;
      do n = ::recv(sock_, buf_, sizeof buf_, 0);
      while (n < 0 && errno == EINTR);
      if (n <= 0) return n;
      off_ = 0;
      len_ = static_cast<size_t>(n);
    }
    const size_t k = std::min(size, len_ - off_);
    std::memcpy(ptr, buf_ + off_, k);
    off_ += k;
    return static_cast<ssize_t>(k);
  }
  ssize_t write(const char* ptr, size_t size) override {
    if (!is_writable()) return -1;
    ssize_t n;
    do n = ::send(sock_, ptr, size, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n;
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = addr_;
    port = port_;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    std::tie(ip, port) = address_of(sock_, ::getsockname);
  }
  socket_t socket() const override { return sock_; }

 private:
  // The read time-out, cut short by the request deadline.
  int read_wait_ms() const {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline_ - Clock::now()).count();
    return static_cast<int>(std::clamp<int64_t>(left, 0, read_ms_));
  }
  int sock_;
  std::string addr_;
  int port_, read_ms_, write_ms_;
  Clock::time_point deadline_ = Clock::time_point::max();
  mutable bool request_timed_out_ = false;
  char buf_[4096];
  size_t off_ = 0, len_ = 0;
};

// Set by a handler on the connection's thread when its reply ends the connection (a refused
// body would otherwise be read as the next request): httplib 0.11 keeps a connection open
// whatever the reply's Connection header says.
thread_local bool t_close_after_reply = false;

// cpp-httplib 0.11 (Debian 12) has one per-connection hook, the virtual
// process_and_close_socket. This server replaces the library's connection loop there
// (parsing and routing stay the library's: process_request) to admit or refuse the
// connection by its client address and to bound the time to a complete request.
class GuardedServer : public httplib::Server {
 public:
  explicit GuardedServer(ConnectionGuard& guard) : guard_(guard) {}

 private:
  bool process_and_close_socket(socket_t sock) override {
    const auto [addr, port] = peer_of(sock);
    if (guard_.admit(sock, addr)) {
      serve_connection(sock, addr, port);
      guard_.leave(sock, addr);
    } else {
      refuse(sock, addr);
    }
    close_after_draining(sock);
    return true;
  }

  // A reply refused a body the client is still sending (413, 411): closing with it unread
  // makes the kernel send a reset, which can wipe out the reply before the client reads it.
  // What comes within 50 ms (64 KiB at most) is read first.
  static void close_after_draining(int sock) {
    ::shutdown(sock, SHUT_WR);
    char scratch[4096];
    size_t drained = 0;
    while (drained < (64u << 10) && wait_socket(sock, POLLIN, 50)) {
      const ssize_t n = ::recv(sock, scratch, sizeof scratch, MSG_DONTWAIT);
      if (n <= 0) break;
      drained += static_cast<size_t>(n);
    }
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
  }

  void serve_connection(int sock, const std::string& addr, int port) {
    GuardedStream strm(sock, addr, port, to_ms(read_timeout_sec_, read_timeout_usec_),
                       to_ms(write_timeout_sec_, write_timeout_usec_));
    for (size_t left = keep_alive_max_count_; left > 0 && svr_sock_ != INVALID_SOCKET && !guard_.stopping(); --left) {
      const bool first = left == keep_alive_max_count_;
      strm.set_deadline(Clock::now() + guard_.request_timeout());
      if (!strm.wait_for_request()) {
        if (first) guard_.count_slow();  // connected and never asked anything in time
        return;                          // an idle keep-alive connection ends quietly
      }
      // The request's own time starts when it starts: one that came late in the idle wait
      // would otherwise be cut off after its first read (nothing is read past the deadline).
      strm.set_deadline(Clock::now() + guard_.request_timeout());
      bool closed = false;
      t_close_after_reply = false;
      const bool ok = process_request(strm, left == 1, closed, nullptr);
      if (t_close_after_reply) return;  // a body refused unread: what follows is not a request
      if (strm.request_timed_out()) {
        guard_.count_slow();
        spdlog::debug("http: closed {}:{}: no complete request within the time-out", addr, port);
        return;
      }
      if (!ok || closed) return;
    }
  }

  // A clear 503 without parsing the request (that would take a thread's time); the caller's
  // close_after_draining keeps the close from turning into a reset that swallows it.
  void refuse(int sock, const std::string& addr) const {
    const std::string body = fmt::format(R"j({{"error":"too many connections from {} (at most {} at a time)"}})j", addr,
                                         guard_.per_client());
    const std::string reply = fmt::format(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {}\r\n"
        "Retry-After: 1\r\nConnection: close\r\n\r\n{}",
        body.size(), body);
    (void)!::send(sock, reply.data(), reply.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  }

  ConnectionGuard& guard_;
};

using httplib::Request;
using httplib::Response;

// An MJPEG viewer gets at least one frame every 10 s, and waits in naps of this length.
constexpr double kMinStreamFps = 0.1;
constexpr std::chrono::milliseconds kStreamNap{200};
constexpr size_t kMaxRequestBody = 64 * 1024;

void send_json(Response& res, const nlohmann::json& j, int status = 200) {
  res.status = status;
  // Text from outside (a config file's bytes in an error) may not be UTF-8: replaced, not a 500.
  res.set_content(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json");
}

void send_error(Response& res, int status, const std::string& message) { send_json(res, {{"error", message}}, status); }

// An error that ends the connection after it is sent: the body the client is sending is not
// read, so what follows it on the connection is not a request.
int refuse_and_close(Response& res, int status, const std::string& message) {
  res.set_header("Connection", "close");
  t_close_after_reply = true;
  send_error(res, status, message);
  return status;
}

bool is_chunked(const Request& req) {
  return req.get_header_value("Transfer-Encoding").find("chunked") != std::string::npos;
}

// 411 for a chunked body, 413 for one over kMaxRequestBody (the answer set in `res`, which
// closes the connection); 0 for a request whose body may be read.
int refused_body(const Request& req, Response& res) {
  if (is_chunked(req)) return refuse_and_close(res, 411, "send the body with Content-Length, not chunked");
  if (req.get_header_value<uint64_t>("Content-Length") > kMaxRequestBody)
    return refuse_and_close(res, 413, fmt::format("body too large (at most {} bytes)", kMaxRequestBody));
  return 0;
}

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

// A whole-number query parameter within [lo, hi]; absent -> fallback; otherwise 400 with the range.
int int_param(const Request& req, const char* name, int fallback, int lo, int hi) {
  if (!req.has_param(name)) return fallback;
  const double d = number_param(req, name, fallback);
  if (d < lo || d > hi || d != std::floor(d))
    throw Error(
        fmt::format("parameter {}={} must be a whole number from {} to {}", name, req.get_param_value(name), lo, hi));
  return static_cast<int>(d);
}

// The id of /api/events/<id>: the route's \d+ can be any length, stoll would throw 500.
int64_t event_id(const std::string& digits) {
  int64_t id = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), id);
  if (ec != std::errc() || end != digits.data() + digits.size() || id < 1)
    throw Error(fmt::format("event id must be from 1 to {}", std::numeric_limits<int64_t>::max()));
  return id;
}

// Secrets compared in a time that does not depend on where they differ (OpenSSL's).
bool constant_time_equal(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

constexpr const char* kSessionCookie = "maskwatch_session";

enum class Role { None, Viewer, Admin };

// What only an admin may do: read and reload the configuration, switch detection, watch
// event clips (video of people, where a viewer sees the blurred stills).
bool admin_only(const Request& req) {
  static const std::regex detect(R"(/api/[A-Za-z0-9_-]+/detect)");
  static const std::regex clip(R"(/api/events/\d+/clip\.mp4)");
  return req.path == "/api/config" || req.path == "/api/config/reload" || std::regex_match(req.path, detect) ||
         std::regex_match(req.path, clip);
}

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

// With token auth, a browser cannot add the Authorization header to a page it opens: the
// dashboard's login (a form posting to /login, or GET /?token=... once) sets an HttpOnly,
// SameSite=Strict cookie instead. Its value is derived from the token (a restart keeps it
// valid; the token itself is not kept in the browser), one per role. No Secure flag: `serve`
// speaks plain HTTP, where a browser would drop such a cookie.
class AuthGate {
 public:
  explicit AuthGate(HttpAuth auth)
      : auth_(std::move(auth)),
        admin_session_(session_of(auth_.token)),
        viewer_session_(session_of(auth_.viewer_token)) {}

  bool enabled() const { return auth_.enabled(); }
  bool has_login() const { return !auth_.token.empty() || !auth_.viewer_token.empty(); }
  Role token_role(const std::string& token) const {
    if (!auth_.token.empty() && constant_time_equal(token, auth_.token)) return Role::Admin;
    if (!auth_.viewer_token.empty() && constant_time_equal(token, auth_.viewer_token)) return Role::Viewer;
    return Role::None;
  }

  Role role(const Request& req) const {
    if (!enabled()) return Role::Admin;
    const std::string header = normalised_authorization(req.get_header_value("Authorization"));
    const std::string session = cookie(req, kSessionCookie);
    const auto matches = [&](const std::string& token, const std::string& user, const std::string& password,
                             const std::string& session_value) {
      return (!token.empty() && (constant_time_equal(header, "Bearer " + token) ||
                                 constant_time_equal(session, session_value))) ||
             (!user.empty() && constant_time_equal(header, "Basic " + base64_encode(user + ":" + password)));
    };
    if (matches(auth_.token, auth_.user, auth_.password, admin_session_)) return Role::Admin;
    if (matches(auth_.viewer_token, auth_.viewer_user, auth_.viewer_password, viewer_session_)) return Role::Viewer;
    return Role::None;
  }

  // 303 to the dashboard with the role's session cookie.
  void let_in(Response& res, Role role) const {
    res.status = 303;
    res.set_header("Location", "/");
    res.set_header("Set-Cookie", fmt::format("{}={}; HttpOnly; SameSite=Strict; Path=/", kSessionCookie,
                                             role == Role::Admin ? admin_session_ : viewer_session_));
    res.set_header("Cache-Control", "no-store");
  }

  static void forbid(const Request& req, Response& res) {
    res.status = 403;
    res.set_content(nlohmann::json{{"error", fmt::format("{} {} needs the admin role; these credentials are a "
                                                          "viewer's",
                                                          req.method, req.path)}}
                        .dump(),
                    "application/json");
  }

  // 401: the login form for the dashboard page (token auth), JSON for everything else.
  void refuse(const Request& req, Response& res, bool wrong_token = false) const {
    res.status = 401;
    if (!auth_.user.empty() || !auth_.viewer_user.empty()) res.set_header("WWW-Authenticate", "Basic realm=\"maskwatch\"");
    if (has_login() && (req.path == "/" || req.path == "/login"))
      res.set_content(login_page(wrong_token), "text/html; charset=utf-8");
    else
      res.set_content(R"({"error":"authentication required"})", "application/json");
  }

 private:
  // The value of one cookie in the request's Cookie header, or "".
  static std::string cookie(const Request& req, const std::string& name) {
    const std::string all = req.get_header_value("Cookie");
    for (size_t at = 0; at < all.size();) {
      const size_t end = std::min(all.find(';', at), all.size());
      size_t begin = at;
      while (begin < end && all[begin] == ' ') ++begin;
      const std::string pair = all.substr(begin, end - begin);
      if (pair.compare(0, name.size() + 1, name + "=") == 0) return pair.substr(name.size() + 1);
      at = end + 1;
    }
    return "";
  }

  static std::string login_page(bool wrong_token) {
    return fmt::format(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
        "content=\"width=device-width\"><title>maskwatch: sign in</title><style>body{{font-family:sans-serif;"
        "max-width:22rem;margin:4rem auto;padding:0 1rem}}input{{width:100%;padding:.5rem;margin:.5rem 0;"
        "box-sizing:border-box}}.wrong{{color:#b00}}</style></head><body><h1>maskwatch</h1>{}"
        "<form method=\"post\" action=\"/login\"><label>Access token<input type=\"password\" name=\"token\" "
        "autocomplete=\"current-password\" autofocus required></label><input type=\"submit\" value=\"Sign in\">"
        "</form></body></html>\n",
        wrong_token ? "<p class=\"wrong\">That token is not the right one.</p>" : "");
  }

  // "bearer  X " -> "Bearer X": the scheme is case-insensitive (RFC 9110), spaces are not part
  // of the credentials.
  static std::string normalised_authorization(std::string h) {
    const auto trim = [](std::string s) {
      const auto b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
      return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
    };
    h = trim(h);
    const size_t space = h.find(' ');
    if (space == std::string::npos) return h;
    std::string scheme = h.substr(0, space);
    for (auto& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (scheme == "bearer") scheme = "Bearer";
    if (scheme == "basic") scheme = "Basic";
    return scheme + " " + trim(h.substr(space + 1));
  }

  static std::string session_of(const std::string& token) {
    return token.empty() ? "" : sha256_hex("maskwatch dashboard session\n" + token);
  }

  HttpAuth auth_;
  std::string admin_session_, viewer_session_;
};

}  // namespace

std::string base64_encode(const std::string& in) {
  // OpenSSL's encoder (no line breaks); 4 output bytes per 3 input bytes, plus its NUL.
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
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

// 503 for a stream beyond http.max_streams: every stream holds a server thread for its life.
void refuse_stream(Response& res, const std::string& what, const Request& req, int max_streams) {
  spdlog::warn("{} {}:{} refused: {} streams open (http.max_streams)", what, req.remote_addr, req.remote_port,
               max_streams);
  res.set_header("Retry-After", "5");
  send_error(
      res, 503,
      fmt::format("the server has its maximum of {} streams open (MJPEG viewers and event listeners)", max_streams));
}

void http_metrics(PromText& out, const nlohmann::json& h) {
  out.family("maskwatch_http_connections", "gauge", "Open HTTP connections.")
      .sample("maskwatch_http_connections", h["connections"].get<double>());
  out.family("maskwatch_http_streams", "gauge", "Open MJPEG viewers and event listeners.")
      .sample("maskwatch_http_streams", h["streams"].get<double>());
  out.family("maskwatch_http_refused_total", "counter", "Connections and streams refused with 503.")
      .sample("maskwatch_http_refused_total", h["refused_connections"].get<double>(), {{"reason", "per_client"}})
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
      server_(std::make_unique<GuardedServer>(*guard_)) {
  // Each connection holds a pool thread. Streams (MJPEG, SSE) are capped at max_streams and
  // one client address at max_connections_per_client, slow requests are closed after
  // request_timeout_s: the caps are reached with 16 threads still free for everyone else.
  const int threads = config_.http.max_streams + config_.http.max_connections_per_client + 16;
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
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
    if (n >= config_.http.max_streams) {
      ++refused_streams_;
      return nullptr;
    }
  } while (!streams_.compare_exchange_weak(n, n + 1));
  return std::shared_ptr<void>(&streams_, [](std::atomic<int>* s) { --*s; });
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

void HttpApi::routes() {
  auto& s = *server_;
  // Every route's pattern and method, so a known path asked with another method is told 405
  // and which methods it takes (RFC 9110 15.5.6), not "no such endpoint".
  auto known = std::make_shared<std::vector<std::pair<std::regex, std::string>>>();
  auto get = [&](const std::string& pattern, httplib::Server::Handler handler) {
    known->emplace_back(std::regex(pattern), "GET, HEAD");  // httplib answers HEAD with the GET handler
    s.Get(pattern, std::move(handler));
  };
  auto post = [&](const std::string& pattern, httplib::Server::Handler handler) {
    known->emplace_back(std::regex(pattern), "POST");
    s.Post(pattern, std::move(handler));
  };
  auto gate = std::make_shared<const AuthGate>(config_.http.auth);
  s.set_pre_routing_handler([gate](const Request& req, Response& res) {
    // A POST with neither Content-Length nor a chunked body (`curl -X POST` alone): httplib would
    // read a body until the connection's read time-out (5 s) before refusing it. Refused now.
    if (req.method == "POST" && !req.has_header("Content-Length") && !is_chunked(req)) {
      refuse_and_close(res, 400, "a POST needs a body or Content-Length: 0 (curl: -d '')");
      return httplib::Server::HandlerResponse::Handled;
    }
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
    post("/login", [gate](const Request& req, Response& res) {
      if (const Role r = gate->token_role(req.get_param_value("token")); r != Role::None)
        gate->let_in(res, r);
      else
        gate->refuse(req, res, /*wrong_token=*/true);
    });
  // httplib's own refusals come with no body: say why, in the API's JSON.
  s.set_error_handler(httplib::Server::HandlerWithResponse([known](const Request& req, Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    std::string why = fmt::format("HTTP {}", res.status);
    std::string allow;
    if (res.status == 404)
      for (const auto& [pattern, methods] : *known)
        if (std::regex_match(req.path, pattern) && allow.find(methods) == std::string::npos)
          allow += (allow.empty() ? "" : ", ") + methods;
    if (allow.find(req.method) != std::string::npos) allow.clear();  // its own method: a real 404
    if (res.status == 404 && !allow.empty()) {
      res.status = 405;
      res.set_header("Allow", allow);
      why = fmt::format("{} takes {}, not {}", req.path.substr(0, 200), allow, req.method);
    } else if (res.status == 404)
      why = fmt::format("no such endpoint: {} {}", req.method, req.path.substr(0, 200));
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

  get("/healthz", [](const Request&, Response& res) { res.set_content("ok\n", "text/plain"); });
  get("/", [](const Request&, Response& res) { res.set_content(dashboard_html(), "text/html; charset=utf-8"); });
  get("/api/version", [this](const Request&, Response& res) {
    send_json(res, {{"name", "maskwatch"},
                    {"version", MASKWATCH_VERSION},
                    // The file it runs ("" said nothing for the shipped one).
                    {"model", config_.model_path()},
                    {"classes", engine_.classes()},
                    {"cameras", engine_.camera_names()},
                    {"fleet", fleet_ != nullptr}});
  });
  get("/api/config", [this](const Request&, Response& res) {
    send_json(res, hooks_.view ? hooks_.view() : config_.to_json(/*redact=*/true));
  });
  post("/api/config/reload", [this](const Request&, Response& res) {
    if (!hooks_.reload) return send_error(res, 404, "live reconfiguration is not available here");
    const auto [status, body] = hooks_.reload();
    send_json(res, body, status);
  });
  get("/api/stats", [this](const Request&, Response& res) {
    auto j = engine_.stats();
    j["http"] = http_stats();
    send_json(res, j);
  });
  get("/metrics", [this](const Request&, Response& res) {
    PromText out;
    out.family("maskwatch_build_info", "gauge", "Version of this server.")
        .sample("maskwatch_build_info", 1, {{"version", MASKWATCH_VERSION}});
    engine_.prometheus_metrics(out);
    http_metrics(out, http_stats());
    if (more_metrics_) more_metrics_(out);
    res.set_content(out.str(), "text/plain; version=0.0.4");
  });

  // Clips are video of people: admins only, and so is their URL in any event (history and live).
  const auto may_watch_clips = [gate](const Request& req) { return gate->role(req) == Role::Admin; };
  // Events: registered before the /api/<camera>/ routes, so "events" never reads as a camera.
  get("/api/events/stream", [this, may_watch_clips](const Request& req, Response& res) {
    auto slot = take_stream_slot();
    if (!slot) return refuse_stream(res, "event listener", req, config_.http.max_streams);
    auto cursor = std::make_shared<uint64_t>(engine_.bus().head());
    auto client = log_client("event listener", req, [slot] {});  // the slot lives as long as the listener
    auto last_write = std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::now());
    res.set_header("Cache-Control", "no-cache");
    const bool clips = may_watch_clips(req);
    res.set_chunked_content_provider(
        "text/event-stream", [this, cursor, last_write, client, clips](size_t, httplib::DataSink& sink) {
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
            chunk += "data: " + to_json(*e, engine_.classes(), clips ? ClipUrls::Shown : ClipUrls::Hidden).dump() +
                     "\n\n";
          const auto now = std::chrono::steady_clock::now();
          if (chunk.empty() && now - *last_write > std::chrono::seconds(10)) chunk = ": keep-alive\n\n";
          if (chunk.empty()) return true;
          *last_write = now;
          return sink.write(chunk.data(), chunk.size());
        });
  });
  get(R"(/api/events/(\d+)/snapshot\.jpg)", [this](const Request& req, Response& res) {
    const auto e = storage_.event(event_id(req.matches[1]));
    if (!e || (*e)["snapshot_file"].get<std::string>().empty()) return send_error(res, 404, "no such snapshot");
    const auto bytes = read_file_bytes(storage_.snapshot_dir() / (*e)["snapshot_file"].get<std::string>(), "snapshot");
    res.set_content(std::string(bytes.begin(), bytes.end()), "image/jpeg");
  });
  get(R"(/api/events/(\d+)/clip\.mp4)", [this](const Request& req, Response& res) {
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
        return send_error(res, 404, fmt::format("the clip of event {} is still being recorded; ready in about {} s",
                                                id, wait_s));
      }
      return send_error(res, 404, fmt::format("the clip of event {} was not kept (removed by retention, or it could "
                                              "not be written: see the log)", id));
    }
    // Streamed from the file (clips can be large; browsers ask for ranges of it).
    const auto size = std::filesystem::file_size(path, ec);
    auto in = std::make_shared<std::ifstream>(path, std::ios::binary);
    if (ec || !*in) return send_error(res, 404, fmt::format("the clip of event {} cannot be read", id));
    // A range that starts past the end cannot be served (RFC 9110 15.5.17); the library of
    // Debian 12 would answer 206 with no bytes.
    for (const auto& range : req.ranges)
      if (range.first >= 0 && static_cast<uintmax_t>(range.first) >= size) {
        res.set_header("Content-Range", fmt::format("bytes */{}", size));
        return send_error(res, 416, fmt::format("range starts at byte {}, the clip has {}", range.first, size));
      }
    res.set_content_provider(
        static_cast<size_t>(size), "video/mp4", [in](size_t offset, size_t length, httplib::DataSink& sink) {
          std::vector<char> buf(std::min<size_t>(length, 64 * 1024));
          in->clear();
          in->seekg(static_cast<std::streamoff>(offset));
          in->read(buf.data(), static_cast<std::streamsize>(buf.size()));
          const auto got = static_cast<size_t>(in->gcount());
          return got > 0 && sink.write(buf.data(), got);
        });
  });
  get(R"(/api/events/(\d+))", [this, may_watch_clips](const Request& req, Response& res) {
    auto e = storage_.event(event_id(req.matches[1]));
    if (!e) return send_error(res, 404, "no such event");
    add_picture_urls(*e, may_watch_clips(req));
    send_json(res, *e);
  });
  get("/api/events", [this, may_watch_clips](const Request& req, Response& res) {
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
  get("/api/fleet", [this](const Request&, Response& res) {
    if (!fleet_) return send_error(res, 404, "no fleet configured (fleet.subscribe in the config)");
    send_json(res, fleet_->to_json());
  });
  get("/api/compliance", [this](const Request& req, Response& res) {
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
  post(R"(/api/([A-Za-z0-9_-]+)/detect)", [this](const Request& req, Response& res) {
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
  get(R"(/api/([A-Za-z0-9_-]+)/latest\.jpg)", [this](const Request& req, Response& res) {
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
  get(R"(/api/([A-Za-z0-9_-]+)/stream\.mjpeg)", [this](const Request& req, Response& res) {
    const std::string camera = req.matches[1];
    if (!engine_.has_camera(camera)) return send_error(res, 404, "unknown camera " + camera);
    const int h = int_param(req, "h", 0, 0, 4320);
    const double fps =
        std::min(number_param(req, "fps", config_.http.stream_fps), static_cast<double>(config_.http.stream_fps));
    // (fps=1e-9 had put the next frame 31 years away, holding a thread and two slots for good)
    if (!(fps >= kMinStreamFps))
      return send_error(res, 400, fmt::format("parameter fps must be at least {}", kMinStreamFps));
    auto stream_slot = take_stream_slot();
    if (!stream_slot)
      return refuse_stream(res, fmt::format("camera {}: MJPEG viewer", camera), req, config_.http.max_streams);
    if (!engine_.add_stream_client(camera)) {
      ++refused_streams_;  // counted with the other refused streams (stats and metrics)
      spdlog::warn("camera {}: MJPEG viewer {}:{} refused, {} viewers already", camera, req.remote_addr,
                   req.remote_port, config_.http.max_stream_clients);
      return send_error(
          res, 503, fmt::format("camera {} has its maximum of {} viewers", camera, config_.http.max_stream_clients));
    }
    // The viewer slot is released when the provider is destroyed (client gone or server stopping).
    auto slot = log_client(fmt::format("camera {}: MJPEG viewer", camera), req,
                           [this, camera, stream_slot] { engine_.remove_stream_client(camera); });
    auto last_seq = std::make_shared<int64_t>(0);
    auto next_due = std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::now());
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "multipart/x-mixed-replace; boundary=maskwatchframe",
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
            if (!engine_.has_camera(camera)) sink.done();  // removed by a reconfiguration: the stream ends
            else if (!sink.is_writable()) return false;    // an offline camera's viewer that left
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
