// Thread counts for both compute libraries of the training binary. Debian's LibTorch starts
// with one intra-op thread (half speed on 2 cores); OpenCV's default is all cores.
#pragma once

namespace maskwatch {

void set_training_threads(int requested);  // LibTorch and OpenCV; 0 = all cores

}  // namespace maskwatch
