// Small socket helpers.
#pragma once

namespace maskwatch {

// A loopback TCP port that was free a moment ago (for a server about to be started on it:
// the tests' brokers and stream servers, bench-serve's broker).
int free_loopback_port();

}  // namespace maskwatch
