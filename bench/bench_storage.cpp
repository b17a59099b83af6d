// What serve's history retention costs the cameras: the inference workers write every finished
// face track to the same SQLite connection that retention deletes old rows from. With `rows`
// tracks past the retention age (a site that lowered storage.retention_days, or started after a
// long stop), the table says how long retention takes and the longest a track write waited
// meanwhile (a writer thread adding tracks as a camera's worker does).
// Run: build/bench/bench_storage
#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include "serve/storage.h"

namespace {

using Clock = std::chrono::steady_clock;

maskwatch::TrackEvent track(double end) {
  maskwatch::TrackEvent e;
  e.camera = "door";
  e.track_id = 1;
  e.start = end - 3;
  e.end = end;
  e.label = "with_mask";
  e.score = 0.97;
  e.x2 = e.y2 = 100;
  return e;
}

void BM_RetentionWhileTracksAreWritten(benchmark::State& state) {
  const auto rows = static_cast<int>(state.range(0));
  const double now = 1.8e9, day = 86400;
  for (auto _ : state) {
    state.PauseTiming();
    const auto dir = std::filesystem::temp_directory_path() / "maskwatch-bench-storage";
    std::filesystem::remove_all(dir);
    double seconds = 0, worst_write_ms = 0;
    int64_t writes = 0;
    {
      maskwatch::Storage storage(dir);
      // `rows` tracks 40-60 days old, and 10,000 from the last day.
      for (int i = 0; i < rows; ++i) storage.add_track(track(now - 60 * day + 20 * day * i / rows), "with_mask");
      for (int i = 0; i < 10000; ++i) storage.add_track(track(now - day + day * i / 10000), "with_mask");
      std::atomic<bool> done{false};
      std::thread writer([&] {
        while (!done) {
          const auto t0 = Clock::now();
          storage.add_track(track(now), "with_mask");
          worst_write_ms = std::max(worst_write_ms, std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
          ++writes;
          std::this_thread::sleep_for(std::chrono::milliseconds(5));  // a track every 5 ms: a busy site
        }
      });
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      state.ResumeTiming();
      const auto t0 = Clock::now();
      storage.apply_retention(30, 0, 0, now);
      seconds = std::chrono::duration<double>(Clock::now() - t0).count();
      state.PauseTiming();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      done = true;
      writer.join();
    }
    std::filesystem::remove_all(dir);
    state.counters["retention_s"] = seconds;
    state.counters["worst_write_ms"] = worst_write_ms;
    state.counters["writes"] = static_cast<double>(writes);
    state.ResumeTiming();
  }
}

}  // namespace

BENCHMARK(BM_RetentionWhileTracksAreWritten)
    ->Arg(10000)
    ->Arg(100000)
    ->Arg(1000000)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

BENCHMARK_MAIN();
