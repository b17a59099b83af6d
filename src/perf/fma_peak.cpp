#include "perf/fma_peak.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "util/stopwatch.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define MASKWATCH_X86 1
#endif

namespace maskwatch {
namespace {

// Enough independent accumulators to cover the FMA latency (4 cycles) x 2 ports.
constexpr int kAcc = 12;
constexpr long kIters = 2'000'000;

#if MASKWATCH_X86
__attribute__((target("avx512f"))) double fma_avx512(float seed) {
  __m512 acc[kAcc];
  for (int i = 0; i < kAcc; ++i) acc[i] = _mm512_set1_ps(seed + static_cast<float>(i));
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (long it = 0; it < kIters; ++it)
    for (int i = 0; i < kAcc; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  alignas(64) float lanes[16];
  float sum = 0;
  for (int i = 0; i < kAcc; ++i) {
    _mm512_store_ps(lanes, acc[i]);
    for (float l : lanes) sum += l;
  }
  return sum;  // used, so the loop is not optimised away
}

__attribute__((target("avx2,fma"))) double fma_avx2(float seed) {
  __m256 acc[kAcc];
  for (int i = 0; i < kAcc; ++i) acc[i] = _mm256_set1_ps(seed + static_cast<float>(i));
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (long it = 0; it < kIters; ++it)
    for (int i = 0; i < kAcc; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  alignas(32) float lanes[8];
  float sum = 0;
  for (int i = 0; i < kAcc; ++i) {
    _mm256_store_ps(lanes, acc[i]);
    for (float l : lanes) sum += l;
  }
  return sum;
}

#endif

double fma_scalar(float seed) {
  float acc[kAcc];
  for (int i = 0; i < kAcc; ++i) acc[i] = seed + static_cast<float>(i);
  for (long it = 0; it < kIters; ++it)
    for (int i = 0; i < kAcc; ++i) acc[i] = acc[i] * 0.999999f + 1e-7f;
  float sum = 0;
  for (float a : acc) sum += a;
  return sum;
}

}  // namespace

FmaPeak measure_fma_peak(int threads, double seconds) {
  FmaPeak peak;
  int lanes = 1;
  double (*kernel)(float) = fma_scalar;
  peak.isa = "scalar";
#if MASKWATCH_X86
  if (__builtin_cpu_supports("avx512f")) {
    kernel = fma_avx512, lanes = 16, peak.isa = "avx512f";
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    kernel = fma_avx2, lanes = 8, peak.isa = "avx2+fma";
  }
#endif
  const double flops_per_call = 2.0 * lanes * kAcc * static_cast<double>(kIters);
  threads = std::max(1, threads);
  Stopwatch total;
  do {
    std::atomic<double> sink{0};
    std::vector<std::thread> pool;
    Stopwatch sw;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        const double r = kernel(static_cast<float>(t) * 1e-3f);
        double cur = sink.load();
        while (!sink.compare_exchange_weak(cur, cur + r)) {
        }
      });
    for (auto& th : pool) th.join();
    peak.flops = std::max(peak.flops, flops_per_call * threads / sw.seconds());
    if (sink.load() == 12345.0) peak.isa += "?";  // keeps the results alive
  } while (total.seconds() < seconds);
  return peak;
}

}  // namespace maskwatch
