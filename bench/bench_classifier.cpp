// Classifier latency: OpenCV DNN on the exported ONNX versus LibTorch eager, per input
// size, batch and thread count. Run: build/bench/bench_classifier
#include <benchmark/benchmark.h>

#include <thread>

#include "nn/classifier_bench.h"

namespace {

void BM_Classifier(benchmark::State& state) {
  const auto engine = static_cast<maskwatch::Engine>(state.range(0));
  const int size = static_cast<int>(state.range(1)), batch = static_cast<int>(state.range(2));
  const int threads = static_cast<int>(state.range(3));
  auto c = maskwatch::make_classifier_case(engine, size, batch, threads);
  for (int i = 0; i < 3; ++i) c.run();  // warm-up (allocations, kernel selection)
  for (auto _ : state) c.run();
  state.SetLabel(maskwatch::engine_name(engine));
  state.counters["faces_per_s"] = benchmark::Counter(
      static_cast<double>(batch) * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void Args(benchmark::internal::Benchmark* b) {
  const int all = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int engine : {0, 1})
    for (int size : {224, 160})
      for (int batch : {1, 4})
        for (int threads : {1, all}) b->Args({engine, size, batch, threads});
  b->ArgNames({"engine", "size", "batch", "threads"})->Unit(benchmark::kMillisecond)->UseRealTime();
}

}  // namespace

BENCHMARK(BM_Classifier)->Apply(Args);
BENCHMARK_MAIN();
