// Makes augmented training batches, in order, on the calling thread. Every image's
// augmentation is drawn from (seed, item), so a batch is the same whoever asks for it.
//
// Synchronous on purpose: a background thread preparing the next batch halved the speed of
// the frozen backbone on 2 cores (12.1 against 6.2 ms/image at 160 px, measured): LibTorch's
// OpenMP workers spin between operations, and a third busy thread keeps descheduling one of
// them. Augmentation costs about 0.6 ms/image here, a tenth of the forward.
#pragma once
#include <torch/torch.h>

#include <opencv2/core.hpp>
#include <vector>

#include "data/augment.h"

namespace maskwatch {

struct Batch {
  std::vector<size_t> items;  // dataset indices
  torch::Tensor images;       // [B, 3, S, S] preprocessed
};

class BatchLoader {
 public:
  // images: the decoded cache (S x S BGR); batches: dataset indices per batch, in order.
  // smooth_noisy: grainy crops are smoothed after augmentation as the classifier smooths
  // grainy faces at run time (model/face_quality.h).
  BatchLoader(const std::vector<cv::Mat>& images, std::vector<std::vector<size_t>> batches,
              const AugmentOptions& augment, uint64_t epoch_seed, int size, bool smooth_noisy = false);

  // Next batch in order; false when all were delivered.
  bool next(Batch& out);

 private:
  const std::vector<cv::Mat>& images_;
  std::vector<std::vector<size_t>> batches_;
  AugmentOptions augment_;
  uint64_t seed_;
  int size_;
  bool smooth_noisy_;
  size_t delivered_ = 0;
};

// Splits `order` into consecutive batches of `batch` (the last may be smaller).
std::vector<std::vector<size_t>> make_batches(const std::vector<size_t>& order, int batch);
// Deterministic shuffle (Fisher-Yates on a splitmix64 stream).
std::vector<size_t> seeded_shuffle(std::vector<size_t> items, uint64_t seed);

}  // namespace maskwatch
