// Thread counts for both compute libraries. Debian's LibTorch starts with one intra-op
// thread (half speed on 2 cores); OpenCV's default is all cores. 0 = all cores.
#pragma once

namespace maskwatch {

int resolve_threads(int requested);  // 0 -> hardware concurrency
void set_compute_threads(int requested);

}  // namespace maskwatch
