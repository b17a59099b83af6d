// Runs another program and waits for it: its stdout, exit code, wall time and peak memory.
// Benchmarks use it to measure the runtime executable as a user runs it (its own process,
// its own libraries), and tests to drive the CLI.
#pragma once
#include <string>
#include <vector>

namespace maskwatch {

struct ProcessResult {
  int exit_code = -1;  // 128 + signal when killed by a signal
  std::string out;     // stdout (stderr is passed through)
  double wall_seconds = 0;
  double max_rss_mib = 0;  // peak resident set of the child (getrusage via wait4)
};

// argv[0] is the program path. Throws Error when it cannot be started.
ProcessResult run_process(const std::vector<std::string>& argv, bool capture_stdout = true);

}  // namespace maskwatch
