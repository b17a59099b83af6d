// The machine's arithmetic peak, measured: every thread runs a register-blocked loop of
// independent fused multiply-adds (the widest vectors the CPU has: AVX-512, else AVX2+FMA,
// else scalar), so nothing but the FMA units limits it. A network cannot run faster than
// its multiply-accumulates at this rate - the floor `bench` compares XNNPACK against (a
// matrix product's rate is not a floor: a good convolution kernel can beat it).
#pragma once
#include <string>

namespace maskwatch {

struct FmaPeak {
  double flops = 0;  // per second, all threads together (2 per multiply-add)
  std::string isa;   // "avx512f", "avx2+fma" or "scalar"
};

// Runs `threads` threads for about `seconds` and returns the best rate seen.
FmaPeak measure_fma_peak(int threads, double seconds);

}  // namespace maskwatch
