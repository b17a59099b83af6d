// Thread counts. OpenCV's default is all cores; --threads N overrides it. The training
// library adds LibTorch's pool (nn/torch_setup.h). 0 = all cores.
#pragma once

namespace maskwatch {

int resolve_threads(int requested);  // 0 -> hardware concurrency
void set_compute_threads(int requested);  // OpenCV

}  // namespace maskwatch
