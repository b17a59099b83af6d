// The HTTP server of `serve` below routing: cpp-httplib's Server with its connection loop
// replaced, so that no client can take every pool thread (or every file descriptor) from the
// others. cpp-httplib keeps one pool thread per connection; here
// - one client address holds at most `per_client` connections (503 beyond),
// - a request must be complete within the request time-out (slowloris),
// - at most kMaxWaitingConnections accepted connections wait for a thread (503 beyond),
// - every socket is closed at once when the server stops.
// Parsing and routing stay the library's; a setup hook mends its parse before routing.
#pragma once
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

namespace maskwatch {

// Open connections of the server, by socket and by client address. Lets one address hold
// at most `per_client` connections (each one is a pool thread) and closes every socket at
// once when the server stops, so no thread waits out a keep-alive or a stream.
class ConnectionGuard {
 public:
  using Clock = std::chrono::steady_clock;
  ConnectionGuard(int per_client, double request_timeout_s);

  // False when `addr` has its maximum open already, or the server is stopping.
  bool admit(int sock, const std::string& addr);
  // Called before the socket is closed: close_all() never touches a reused descriptor.
  void leave(int sock, const std::string& addr);
  // shutdown() makes every blocked poll/recv/send of the connection threads return at once.
  void close_all();

  bool stopping() const;
  void count_slow() { ++closed_slow_; }
  void count_busy() { ++refused_busy_; }
  int per_client() const { return per_client_; }
  Clock::duration request_timeout() const { return request_timeout_; }
  // connections, refused_connections (per client), refused_busy (no thread free), closed_slow.
  nlohmann::json stats() const;

 private:
  const int per_client_;
  const Clock::duration request_timeout_;
  mutable std::mutex mutex_;
  std::set<int> socks_;
  std::map<std::string, int> per_addr_;
  std::set<std::string> capped_;
  bool stopping_ = false;
  int64_t refused_ = 0;
  std::atomic<int64_t> closed_slow_{0}, refused_busy_{0};
};

// cpp-httplib 0.11 (Debian 12) has one per-connection hook, the virtual
// process_and_close_socket. This server replaces the library's connection loop there
// (parsing and routing stay the library's: process_request) to admit or refuse the
// connection by its client address and to bound the time to a complete request.
class GuardedServer : public httplib::Server {
 public:
  // Connections accepted while every one of `threads` pool threads is busy wait for one, up
  // to this many; beyond, each is answered 503 at once. The library's queue had no bound: a
  // flood of connections held a descriptor each until the process had none left, and then
  // the cameras' clips and the database could not open files either.
  static constexpr int kMaxWaitingConnections = 64;

  // Runs on every request the library has parsed (request line, headers, query, ranges),
  // before pre-routing and routing, on the library's own Request: the place to mend its parse.
  using RequestSetup = std::function<void(httplib::Request&)>;
  GuardedServer(ConnectionGuard& guard, int threads, RequestSetup setup);

 private:
  bool process_and_close_socket(socket_t sock) override;
  void serve_connection(int sock, const std::string& addr, int port);
  // A clear 503 without parsing the request (that would take a thread's time).
  void refuse(int sock, const std::string& why) const;

  ConnectionGuard& guard_;
  const RequestSetup setup_;
};

// For a route handler: the connection ends after this reply (a body refused unread would
// otherwise be read as the next request). httplib 0.11 keeps a connection open whatever the
// reply's Connection header says.
void close_connection_after_reply();

}  // namespace maskwatch
