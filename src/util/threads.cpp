#include "util/threads.h"

#include <opencv2/core.hpp>
#include <thread>

namespace maskwatch {

int resolve_threads(int requested) {
  return requested > 0 ? requested : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

void set_compute_threads(int requested) { cv::setNumThreads(resolve_threads(requested)); }

}  // namespace maskwatch
