// Makes augmented training batches on a worker thread while the caller runs the network
// on the previous one (a bounded queue of two batches). Every image's warp is drawn from
// (seed, item), so the batches are identical whatever the thread timing.
#pragma once
#include <torch/torch.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <opencv2/core.hpp>
#include <thread>
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
  BatchLoader(const std::vector<cv::Mat>& images, std::vector<std::vector<size_t>> batches,
              const AugmentOptions& augment, uint64_t epoch_seed, int size);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  // Next batch in order; false when all were delivered.
  bool next(Batch& out);

 private:
  void produce();
  const std::vector<cv::Mat>& images_;
  std::vector<std::vector<size_t>> batches_;
  AugmentOptions augment_;
  uint64_t seed_;
  int size_;
  std::deque<Batch> queue_;
  size_t produced_ = 0, delivered_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::thread worker_;
};

// Splits `order` into consecutive batches of `batch` (the last may be smaller).
std::vector<std::vector<size_t>> make_batches(const std::vector<size_t>& order, int batch);
// Deterministic shuffle (Fisher-Yates on a splitmix64 stream).
std::vector<size_t> seeded_shuffle(std::vector<size_t> items, uint64_t seed);

}  // namespace maskwatch
