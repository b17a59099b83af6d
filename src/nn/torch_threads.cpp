#include "nn/torch_threads.h"

#include <torch/torch.h>

#include "util/threads.h"

namespace maskwatch {

void set_training_threads(int requested) {
  torch::set_num_threads(resolve_threads(requested));
  set_compute_threads(requested);
}

}  // namespace maskwatch
