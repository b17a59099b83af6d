#include "serve/guarded_server.h"

#include <fmt/format.h>
#include <netdb.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <memory>
#include <tuple>

namespace maskwatch {

using Clock = std::chrono::steady_clock;

ConnectionGuard::ConnectionGuard(int per_client, double request_timeout_s)
    : per_client_(per_client),
      request_timeout_(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(request_timeout_s))) {}

bool ConnectionGuard::admit(int sock, const std::string& addr) {
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

void ConnectionGuard::leave(int sock, const std::string& addr) {
  std::lock_guard<std::mutex> lock(mutex_);
  socks_.erase(sock);
  auto it = per_addr_.find(addr);
  if (it != per_addr_.end() && --it->second < per_client_) capped_.erase(addr);
  if (it != per_addr_.end() && it->second <= 0) per_addr_.erase(it);
}

void ConnectionGuard::close_all() {
  std::lock_guard<std::mutex> lock(mutex_);
  stopping_ = true;
  for (int s : socks_) ::shutdown(s, SHUT_RDWR);
}

bool ConnectionGuard::stopping() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stopping_;
}

nlohmann::json ConnectionGuard::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return {{"connections", socks_.size()},
          {"refused_connections", refused_},
          {"refused_busy", refused_busy_.load()},
          {"closed_slow", closed_slow_.load()}};
}

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

// Set by a handler on the connection's thread when its reply ends the connection.
thread_local bool t_close_after_reply = false;
// Set on the accepting thread while it refuses a connection that found no thread free.
thread_local bool t_refuse_busy = false;

// httplib's ThreadPool with a bound on the connections that wait for one of its threads. A
// connection beyond it is handed to the server on the accepting thread with t_refuse_busy set:
// a 503 and a close, with no waiting.
class BoundedPool : public httplib::TaskQueue {
 public:
  BoundedPool(int threads, int max_waiting)
      : threads_(threads), limit_(threads + max_waiting), pool_(static_cast<size_t>(threads)) {}

  void enqueue(std::function<void()> fn) override {
    const int taken = in_pool_.load();
    if (taken >= limit_) {
      // One line per episode: the first refusal after a thread was last free.
      if (!busy_logged_.exchange(true))
        spdlog::warn("http: all {} connection threads are taken and {} connections wait; refusing more with 503",
                     threads_, limit_ - threads_);
      t_refuse_busy = true;
      const std::shared_ptr<void> reset(nullptr, [](void*) { t_refuse_busy = false; });
      fn();
      return;
    }
    if (taken < threads_) busy_logged_ = false;
    ++in_pool_;
    pool_.enqueue([this, fn = std::move(fn)] {
      fn();
      --in_pool_;
    });
  }
  void shutdown() override { pool_.shutdown(); }

 private:
  const int threads_, limit_;
  std::atomic<int> in_pool_{0};  // before pool_: its threads use it until shutdown() joins them
  std::atomic<bool> busy_logged_{false};
  httplib::ThreadPool pool_;
};

// A reply refused a request the client is still sending (413, 411, 400): closing with it unread
// makes the kernel send a reset, which can wipe out the reply before the client reads it.
// What comes within `wait_ms` (64 KiB at most) is read first.
void close_after_draining(int sock, int wait_ms) {
  ::shutdown(sock, SHUT_WR);
  char scratch[4096];
  size_t drained = 0;
  while (drained < (64u << 10) && (wait_ms == 0 || wait_socket(sock, POLLIN, wait_ms))) {
    const ssize_t n = ::recv(sock, scratch, sizeof scratch, MSG_DONTWAIT);
    if (n <= 0) break;
    drained += static_cast<size_t>(n);
  }
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
}

}  // namespace

void close_connection_after_reply() { t_close_after_reply = true; }

GuardedServer::GuardedServer(ConnectionGuard& guard, int threads, RequestSetup setup)
    : guard_(guard), setup_(std::move(setup)) {
  new_task_queue = [threads] { return new BoundedPool(threads, kMaxWaitingConnections); };
}

bool GuardedServer::process_and_close_socket(socket_t sock) {
  if (t_refuse_busy) {
    // On the accepting thread: what the client has sent already is read, without waiting.
    guard_.count_busy();
    refuse(sock, fmt::format("the server is busy: every connection thread is taken and {} more connections wait",
                             kMaxWaitingConnections));
    close_after_draining(sock, 0);
    return true;
  }
  const auto [addr, port] = peer_of(sock);
  if (guard_.admit(sock, addr)) {
    serve_connection(sock, addr, port);
    guard_.leave(sock, addr);
  } else {
    refuse(sock, guard_.stopping() ? "the server is stopping"
                                   : fmt::format("too many connections from {} (at most {} at a time)", addr,
                                                 guard_.per_client()));
  }
  close_after_draining(sock, 50);
  return true;
}

void GuardedServer::serve_connection(int sock, const std::string& addr, int port) {
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
    const bool ok = process_request(strm, left == 1, closed, setup_);
    if (strm.request_timed_out()) {
      guard_.count_slow();
      spdlog::debug("http: closed {}:{}: no complete request within the time-out", addr, port);
      return;
    }
    if (t_close_after_reply) return;  // a request refused unread: what follows is not a request
    if (!ok || closed) return;
  }
}

// The caller's close_after_draining keeps the close from turning into a reset that swallows it.
void GuardedServer::refuse(int sock, const std::string& why) const {
  const std::string body = nlohmann::json{{"error", why}}.dump();
  const std::string reply = fmt::format(
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {}\r\n"
      "Retry-After: 1\r\nConnection: close\r\n\r\n{}",
      body.size(), body);
  (void)!::send(sock, reply.data(), reply.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

}  // namespace maskwatch
