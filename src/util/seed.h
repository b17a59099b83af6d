// Deterministic seeding: splitmix64 mixing of a seed with indices (epoch, image, view...).
// std:: distributions differ between standard libraries; these functions do not, so a
// split, a shuffle or an augmentation is the same on every platform and after a resume.
#pragma once
#include <cstdint>
#include <string>

namespace maskwatch {

// Stable 64-bit mix of a seed with up to three indices.
uint64_t mix_seed(uint64_t seed, uint64_t a, uint64_t b = 0, uint64_t c = 0);

// Uniform numbers from a splitmix64 stream.
struct SeededStream {
  uint64_t state;
  double uniform(double lo, double hi);  // in [lo, hi)
  bool chance(double p) { return uniform(0, 1) < p; }
};

// FNV-1a hash of a string (stable ids for names).
uint64_t fnv1a(const std::string& s);

}  // namespace maskwatch
