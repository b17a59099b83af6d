// Ctrl-C (SIGINT), SIGTERM (systemd, kill) and SIGHUP (a closed terminal) all ask a long
// command to stop cleanly: finish the current frame or batch, close recordings, write
// summaries, exit 0. A second signal of any of them 2 s or more after the first gets the
// default action (the process dies), so a stuck command can still be killed with Ctrl-C; one
// sooner is a double press and is ignored (it used to kill the stop that was saving the work).
#pragma once
#include <csignal>

namespace maskwatch {

class StopSignals {
 public:
  // `on_stop` runs in the signal handler: it may only set a lock-free atomic flag.
  explicit StopSignals(void (*on_stop)(int));
  ~StopSignals();  // restores the previous handlers
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  struct sigaction old_[3];
};

}  // namespace maskwatch
