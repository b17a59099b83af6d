#include "train/batch_loader.h"

#include "model/face_quality.h"
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
                         const AugmentOptions& augment, uint64_t epoch_seed, int size, bool smooth_noisy)
    : images_(images),
      batches_(std::move(batches)),
      augment_(augment),
      seed_(epoch_seed),
      size_(size),
      smooth_noisy_(smooth_noisy) {}

bool BatchLoader::next(Batch& out) {
  if (delivered_ == batches_.size()) return false;
  out.items = batches_[delivered_++];
  std::vector<cv::Mat> augmented;
  augmented.reserve(out.items.size());
  for (size_t item : out.items) {
    cv::Mat crop = augment_training_image(images_[item], augment_, mix_seed(seed_, item), size_);
    if (smooth_noisy_) crop = smoothed_if_noisy(crop, measure_face_quality(crop));
    augmented.push_back(std::move(crop));
  }
  out.images = images_to_tensor(augmented, size_);
  return true;
}

}  // namespace maskwatch
