// The p-quantile (0..1) of a sample: the value at index floor(p * n) of the sorted sample (the
// last for p = 1), a rank at or just above the quantile, on the safe side for tail latencies:
// p99 of 300 latencies is the 298th smallest, p50 of two the larger. 0 for an empty sample.
#pragma once
#include <algorithm>
#include <vector>

namespace maskwatch {

template <class Container>
double percentile(Container values, double p) {
  if (values.empty()) return 0;
  std::vector<double> v(values.begin(), values.end());
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace maskwatch
