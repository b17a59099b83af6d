#include "train/batch_loader.h"

#include "nn/blob_tensor.h"

namespace maskwatch {

std::vector<std::vector<size_t>> make_batches(const std::vector<size_t>& order, int batch) {
  std::vector<std::vector<size_t>> out;
  for (size_t i = 0; i < order.size(); i += static_cast<size_t>(batch))
    out.emplace_back(order.begin() + static_cast<long>(i),
                     order.begin() + static_cast<long>(std::min(order.size(), i + static_cast<size_t>(batch))));
  return out;
}

std::vector<size_t> seeded_shuffle(std::vector<size_t> items, uint64_t seed) {
  for (size_t i = items.size(); i > 1; --i) {
    const uint64_t r = mix_seed(seed, i);
    std::swap(items[i - 1], items[static_cast<size_t>(r % i)]);
  }
  return items;
}

BatchLoader::BatchLoader(const std::vector<cv::Mat>& images, std::vector<std::vector<size_t>> batches,
                         const AugmentOptions& augment, uint64_t epoch_seed, int size)
    : images_(images), batches_(std::move(batches)), augment_(augment), seed_(epoch_seed), size_(size) {
  worker_ = std::thread([this] { produce(); });
}

BatchLoader::~BatchLoader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  worker_.join();
}

void BatchLoader::produce() {
  try {
    for (size_t b = 0; b < batches_.size(); ++b) {
      Batch batch;
      batch.items = batches_[b];
      std::vector<cv::Mat> warped;
      warped.reserve(batch.items.size());
      for (size_t item : batch.items)
        warped.push_back(augment_image(images_[item], draw_affine(augment_, mix_seed(seed_, item)), size_));
      batch.images = images_to_tensor(warped, size_);
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [&] { return stop_ || queue_.size() < 2; });
      if (stop_) return;
      queue_.push_back(std::move(batch));
      ++produced_;
      cv_.notify_all();
    }
  } catch (...) {
    std::lock_guard<std::mutex> lock(mutex_);
    error_ = std::current_exception();
    cv_.notify_all();
  }
}

bool BatchLoader::next(Batch& out) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (delivered_ == batches_.size()) return false;
  cv_.wait(lock, [&] { return !queue_.empty() || error_; });
  if (queue_.empty() && error_) std::rethrow_exception(error_);
  out = std::move(queue_.front());
  queue_.pop_front();
  ++delivered_;
  cv_.notify_all();
  return true;
}

}  // namespace maskwatch
