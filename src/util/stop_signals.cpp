#include "util/stop_signals.h"

namespace maskwatch {
namespace {
constexpr int kSignals[3] = {SIGINT, SIGTERM, SIGHUP};
}

StopSignals::StopSignals(void (*on_stop)(int)) {
  struct sigaction sa {};
  sa.sa_handler = on_stop;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND;  // the second signal kills: see the header
  for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &sa, &old_[i]);
}

StopSignals::~StopSignals() {
  for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &old_[i], nullptr);
}

}  // namespace maskwatch
