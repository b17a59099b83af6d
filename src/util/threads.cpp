#include "util/threads.h"

#include <unistd.h>

#include <cstdlib>
#include <opencv2/core.hpp>
#include <thread>

namespace maskwatch {

int resolve_threads(int requested) {
  return requested > 0 ? requested : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

void set_compute_threads(int requested) {
  // OpenCV's TBB backend takes at most one thread per core and printed a raw "TBB Warning"
  // when asked for more.
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  cv::setNumThreads(std::min(resolve_threads(requested), cores));
}

bool set_openmp_spin_default() {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return false;
  setenv("GOMP_SPINCOUNT", "1000", /*overwrite=*/0);
  return true;
}

void reexec_with_openmp_spin_default(char** argv) {
  if (!set_openmp_spin_default()) return;
  execv("/proc/self/exe", argv);
  // Exec failed (no /proc): run on with libgomp's default; only the contended speed suffers.
}

}  // namespace maskwatch
