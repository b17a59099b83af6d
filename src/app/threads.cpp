#include <opencv2/core.hpp>
#include <thread>
#include <torch/torch.h>

#include "app/commands.h"

namespace maskwatch::app {

void set_threads(int threads) {
  // Debian's LibTorch starts with one intra-op thread; use the machine unless told otherwise.
  const int n = threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  torch::set_num_threads(n);
  cv::setNumThreads(n);
}

}  // namespace maskwatch::app
