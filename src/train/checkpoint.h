// Training checkpoints: model weights, optimizer state and loop position in one file,
// written atomically after every epoch, so a killed run loses at most the epoch in flight
// and --resume continues exactly where it stopped.
#pragma once
#include <torch/torch.h>

#include <filesystem>
#include <limits>
#include <string>

#include "nn/mask_net.h"

namespace maskwatch {

struct LoopState {
  int phase = 1;       // phase of the next epoch to run (1 frozen, 2 fine-tuning, 3 done)
  int next_epoch = 0;  // index of the next epoch within that phase
  double best_val_loss = std::numeric_limits<double>::infinity();
  int best_epoch = -1;  // global epoch index (phase-1 epochs first) of the best weights
  int bad_epochs = 0;   // epochs since the last improvement (early stopping)
  double phase_seconds[2] = {0, 0};
  std::string recipe_sha256;  // fingerprint of data + options; resume refuses a mismatch
};

void save_checkpoint(const std::filesystem::path& path, MaskNet& net, const torch::optim::Optimizer& opt,
                     const LoopState& state);
// Reads only the loop state (to know which optimizer to build before load_checkpoint).
LoopState read_loop_state(const std::filesystem::path& path);
// Loads weights, and the optimizer state when `opt` is given.
void load_checkpoint(const std::filesystem::path& path, MaskNet& net, torch::optim::Optimizer* opt);

// Weights only (the best epoch so far).
void save_weights(const std::filesystem::path& path, MaskNet& net);
void load_weights(const std::filesystem::path& path, MaskNet& net);

}  // namespace maskwatch
