// Costs inside one training run, per image: the frozen backbone's forward (what every
// augmented view pays), the fine-tuned tail's forward + backward (what every phase-2 epoch
// pays) and the augmentation (geometry + camera effects) on the loader thread.
// Run: build/bench/bench_training
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <opencv2/core.hpp>

#include "data/augment.h"
#include "nn/blob_tensor.h"
#include "nn/mask_net.h"
#include "nn/tflite_import.h"
#include "nn/torch_setup.h"
#include "train/features.h"
#include "util/paths.h"

namespace {

std::vector<cv::Mat> random_images(int n, int size) {
  cv::RNG rng(1);
  std::vector<cv::Mat> out;
  for (int i = 0; i < n; ++i) {
    cv::Mat m(size, size, CV_8UC3);
    rng.fill(m, cv::RNG::UNIFORM, 0, 255);
    out.push_back(m);
  }
  return out;
}

// The ImageNet weights, not random ones: their activations are what training really computes.
maskwatch::MobileNetV2 imported_backbone() {
  maskwatch::MobileNetV2 net(0);
  maskwatch::import_tflite(maskwatch::asset_path(maskwatch::kQuantBackbone), net);
  net->eval();
  return net;
}

void BM_FrozenBackbone(benchmark::State& state) {
  const int size = static_cast<int>(state.range(0)), batch = 32;
  maskwatch::setup_training_compute(static_cast<int>(state.range(1)));
  torch::globalContext().setFlushDenormal(state.range(2) != 0);
  auto net = imported_backbone();
  maskwatch::FrozenBackbone frozen(net, 15);
  frozen.set_chunk(static_cast<int>(state.range(3)));
  const auto x = maskwatch::images_to_tensor(random_images(batch, size), size);
  for (auto _ : state) benchmark::DoNotOptimize(frozen.tail_pooled(frozen.prefix(x)));
  state.counters["ms_per_image"] =
      benchmark::Counter(static_cast<double>(batch) * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert, benchmark::Counter::kIs1000);
}
BENCHMARK(BM_FrozenBackbone)
    ->ArgsProduct({{224, 160, 128}, {2}, {1}, {1, 2, 4, 8}})
    ->Args({160, 1, 1, 4})
    ->Args({160, 2, 0, 4})
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2);

// The two halves apart: the prefix (stages 0-14, the view's bulk) and the tail (15-18 +
// pool, at 5x5 for 160 px), and the whole network as one prefix.
void BM_BackboneParts(benchmark::State& state) {
  const int size = 160, batch = 32, part = static_cast<int>(state.range(0));
  maskwatch::setup_training_compute(2);
  auto net = imported_backbone();
  maskwatch::FrozenBackbone frozen(net, part == 2 ? maskwatch::kNumStages : 15);
  const auto x = maskwatch::images_to_tensor(random_images(batch, size), size);
  const auto pre = frozen.prefix(x);
  for (auto _ : state) {
    if (part == 1)
      benchmark::DoNotOptimize(frozen.tail_pooled(pre));
    else
      benchmark::DoNotOptimize(frozen.prefix(x));
  }
  state.SetLabel(part == 0 ? "prefix 0-14" : part == 1 ? "tail 15-18 + pool" : "whole network as prefix");
  state.counters["ms_per_image"] =
      benchmark::Counter(32.0 * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert, benchmark::Counter::kIs1000);
}
BENCHMARK(BM_BackboneParts)->Arg(0)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->MinTime(2);

// As the trainer calls it: BGR images -> blob -> prefix -> tail, new images every time.
void BM_FrozenBackboneFromImages(benchmark::State& state) {
  const int size = static_cast<int>(state.range(0));
  maskwatch::setup_training_compute(2);
  auto net = imported_backbone();
  maskwatch::FrozenBackbone frozen(net, 15);
  const auto images = random_images(256, size);
  size_t i = 0;
  for (auto _ : state) {
    const std::vector<cv::Mat> chunk(images.begin() + static_cast<long>(i % 256),
                                     images.begin() + static_cast<long>(i % 256 + 32));
    benchmark::DoNotOptimize(frozen.tail_pooled(frozen.prefix_of_images(chunk, size)));
    i = (i + 32) % 224;
  }
  state.counters["ms_per_image"] =
      benchmark::Counter(32.0 * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert, benchmark::Counter::kIs1000);
}
BENCHMARK(BM_FrozenBackboneFromImages)->Arg(160)->Arg(128)->Unit(benchmark::kMillisecond)->MinTime(3);

void BM_TailTraining(benchmark::State& state) {
  const int size = static_cast<int>(state.range(0)), batch = 32;
  maskwatch::setup_training_compute(2);
  maskwatch::MaskNet net(maskwatch::MaskNetOptions{});
  net->freeze_backbone_before(15);
  maskwatch::FrozenBackbone frozen(net->backbone, 15);
  const auto prefix = frozen.prefix(maskwatch::images_to_tensor(random_images(batch, size), size));
  torch::optim::Adam opt(net->trainable_parameters(), torch::optim::AdamOptions(1e-4));
  const auto labels = torch::zeros({batch}, torch::kLong);
  for (auto _ : state) {
    net->set_training(true);
    opt.zero_grad();
    const auto x = prefix.contiguous(torch::MemoryFormat::ChannelsLast);
    const auto logits = net->head(net->backbone->forward_stages(x, 15, maskwatch::kNumStages - 1).mean({2, 3}));
    torch::nn::functional::cross_entropy(logits, labels).backward();
    opt.step();
  }
  state.counters["ms_per_image"] =
      benchmark::Counter(static_cast<double>(batch) * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert, benchmark::Counter::kIs1000);
}
BENCHMARK(BM_TailTraining)->Arg(224)->Arg(160)->Arg(128)->Unit(benchmark::kMillisecond);

void BM_Augment(benchmark::State& state) {
  const int size = static_cast<int>(state.range(0));
  maskwatch::AugmentOptions o;
  o.photo.enabled = state.range(1) != 0;
  const auto images = random_images(64, size);
  uint64_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(maskwatch::augment_training_image(images[i % 64], o, maskwatch::mix_seed(1, i), size));
    ++i;
  }
}
BENCHMARK(BM_Augment)->Args({160, 0})->Args({160, 1})->Args({224, 1})->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
