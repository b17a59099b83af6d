// `maskwatch bench`: measures and prints the speed tables that README.md quotes.
#include <fmt/format.h>

#include <thread>

#include "app/commands.h"
#include "perf/classifier_bench.h"
#include "perf/timing.h"
#include "util/json_io.h"

namespace maskwatch::app {
namespace {

struct BenchOpts {
  std::string json_out;
  double seconds = 1.0;
  std::vector<int> sizes = {224, 160};
  std::vector<int> batches = {1, 4};
  std::vector<int> threads;
};

json classifier_section(const BenchOpts& o) {
  std::vector<std::vector<std::string>> rows;
  json results = json::array();
  for (int threads : o.threads)
    for (int size : o.sizes)
      for (int batch : o.batches) {
        double ms[2] = {0, 0};
        for (Engine e : {Engine::OpenCvDnn, Engine::LibTorchEager}) {
          const auto r = json::parse(run_isolated([&] {
            auto c = make_classifier_case(e, size, batch, threads);
            const auto t = time_it(c.run, 3, 10, o.seconds);
            return json{{"engine", engine_name(e)}, {"input", size}, {"batch", batch}, {"threads", threads},
                        {"median_ms_per_batch", t.median_ms}, {"ms_per_face", t.median_ms / batch},
                        {"iterations", t.iterations}, {"blas", loaded_blas()}}
                .dump();
          }));
          ms[e == Engine::OpenCvDnn ? 0 : 1] = r["ms_per_face"].get<double>();
          results.push_back(r);
        }
        rows.push_back({std::to_string(size), std::to_string(batch), std::to_string(threads),
                        fmt::format("{:.2f}", ms[0]), fmt::format("{:.2f}", ms[1]),
                        fmt::format("{:.1f}x", ms[1] / ms[0])});
      }
  fmt::print("\nClassifier latency per face (median; batch forward time / batch)\n\n{}",
             markdown_table({"input", "batch", "threads", "OpenCV DNN ms/face", "LibTorch eager ms/face", "speed-up"}, rows));
  return results;
}

}  // namespace

void add_bench_command(CLI::App& root) {
  auto o = std::make_shared<BenchOpts>();
  auto* cmd = root.add_subcommand("bench", "Measure speed and print the tables quoted in README.md");
  cmd->add_option("--json", o->json_out, "Also write all measurements as JSON");
  cmd->add_option("--seconds", o->seconds, "Minimum measuring time per case")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--threads", o->threads, "Thread counts to measure (default: 1 and all cores)");
  cmd->callback([o] {
    if (o->threads.empty()) {
      const int all = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
      o->threads = all > 1 ? std::vector<int>{1, all} : std::vector<int>{1};
    }
    fmt::print("maskwatch bench on {}\n", machine_description());
    json out{{"machine", machine_description()}};
    out["classifier"] = classifier_section(*o);
    out["blas"] = out["classifier"].back().value("blas", "?");
    fmt::print("\nLibTorch BLAS: {}\nEach case runs in its own process (fresh thread pools).\n",
               out["blas"].get<std::string>());
    out["peak_rss_mib"] = peak_rss_mib();
    if (!o->json_out.empty()) write_json_atomic(o->json_out, out);
  });
}

}  // namespace maskwatch::app
