#include "util/stop_signals.h"

#include <atomic>
#include <cstdint>
#include <ctime>

namespace maskwatch {

namespace {
constexpr int kSignals[3] = {SIGINT, SIGTERM, SIGHUP};
// A second signal within this of the first is a double press, not "kill it": the clean stop
// goes on (a quick second Ctrl-C lost the whole recording, its index never written).
constexpr int64_t kDoublePressNs = 2'000'000'000;

void (*g_on_stop)(int) = nullptr;
std::atomic<int64_t> g_first_signal_ns{0};  // 0: no signal yet
static_assert(std::atomic<int64_t>::is_always_lock_free, "used in a signal handler");

int64_t monotonic_ns() {  // clock_gettime is async-signal-safe
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

void on_signal(int sig) {
  const int64_t now = monotonic_ns();
  int64_t first = 0;
  if (g_first_signal_ns.compare_exchange_strong(first, now)) {
    g_on_stop(sig);
    return;
  }
  if (now - first < kDoublePressNs) return;
  signal(sig, SIG_DFL);  // a stop that hangs: the default action, as if we had no handler
  raise(sig);
}
}  // namespace

StopSignals::StopSignals(void (*on_stop)(int)) {
  g_on_stop = on_stop;
  g_first_signal_ns = 0;
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &sa, &old_[i]);
}

StopSignals::~StopSignals() {
  for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &old_[i], nullptr);
}

}  // namespace maskwatch
