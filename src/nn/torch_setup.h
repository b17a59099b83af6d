// How the training executable sets up LibTorch before heavy work. Measured on the 2-core
// machine (build/bench/bench_training, MobileNetV2 forward with the ImageNet weights):
//  - threads: Debian's LibTorch starts with one intra-op thread (half speed on 2 cores);
//  - denormals flushed to zero, as inference engines do (tiny activations would take the
//    FPU's slow path; the gain measured here was within this VM's noise);
//  - freed memory kept for reuse (util/memory.h): 6.1 vs 9.9 ms/image at 160 px.
#pragma once

namespace maskwatch {

void setup_training_compute(int threads);  // LibTorch and OpenCV threads (0 = all cores)

}  // namespace maskwatch
