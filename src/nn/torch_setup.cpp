#include "nn/torch_setup.h"

#include <torch/torch.h>

#include "util/memory.h"
#include "util/threads.h"

namespace maskwatch {

void setup_training_compute(int threads) {
  torch::set_num_threads(resolve_threads(threads));
  set_compute_threads(threads);
  torch::globalContext().setFlushDenormal(true);
  keep_freed_memory_for_reuse();
}

}  // namespace maskwatch
