// Small timing helpers shared by `maskwatch bench` and the Google Benchmark programs.
#pragma once
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "util/stopwatch.h"

namespace maskwatch {

struct TimingStats {
  double median_ms = 0, mean_ms = 0, min_ms = 0, p90_ms = 0;
  int iterations = 0;
};

// Runs fn `warmup` times untimed, then until both min_iterations and min_seconds are
// reached (capped at max_iterations); statistics over the per-call wall times.
TimingStats time_it(const std::function<void()>& fn, int warmup = 3, int min_iterations = 10, double min_seconds = 1.0,
                    int max_iterations = 1000);

// Peak resident set size of this process so far, in MiB (from /proc/self/status VmHWM).
double peak_rss_mib();

// Markdown table: header row, rows of cells. Right-aligns cells that look numeric.
std::string markdown_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);

// The library that provides sgemm_ in this process (LibTorch's GEMMs run there).
std::string loaded_blas();

// Runs fn in a forked child process and returns what it returned. Benchmarks use it so each
// case starts with fresh thread pools: OpenCV (TBB) and LibTorch/OpenBLAS (OpenMP) pools
// left over from an earlier case compete for the 2 cores and skew the next measurement.
// The caller must not have started such pools itself. Throws Error if the child fails.
std::string run_isolated(const std::function<std::string()>& fn);

// A one-line description of this machine (CPU model, cores, memory) for reports.
std::string machine_description();

}  // namespace maskwatch
