// What the quality gate costs per classified face (model/face_quality.h): measuring a 160 px
// crop (luma, contrast, Laplacian, 3x3 median residual, clipping), and smoothing a grainy one.
// Set beside the classifier's own 2-4 ms per face (README "Classifier latency per face").
// Run: build/bench/bench_face_quality
#include <benchmark/benchmark.h>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "model/face_quality.h"

namespace {

cv::Mat face_like(bool grainy) {
  cv::Mat img(160, 160, CV_8UC3);
  cv::randu(img, cv::Scalar::all(60), cv::Scalar::all(200));
  cv::GaussianBlur(img, img, cv::Size(), 4);  // smooth shading, like skin
  if (grainy) {
    cv::Mat noise(img.size(), CV_16SC3);
    cv::randn(noise, cv::Scalar::all(0), cv::Scalar::all(12));
    img.convertTo(img, CV_16SC3);
    img += noise;
    img.convertTo(img, CV_8UC3);
  }
  return img;
}

void BM_MeasureFace(benchmark::State& state) {
  const cv::Mat crop = face_like(false);
  for (auto _ : state) benchmark::DoNotOptimize(maskwatch::measure_face_quality(crop).noise);
}

void BM_MeasureAndSmoothGrainyFace(benchmark::State& state) {
  const cv::Mat crop = face_like(true);
  for (auto _ : state) {
    const auto q = maskwatch::measure_face_quality(crop);
    const cv::Mat out = maskwatch::smoothed_if_noisy(crop, q);
    benchmark::DoNotOptimize(out.data);
  }
  state.SetLabel(maskwatch::measure_face_quality(crop).noise >= maskwatch::kNoisyFace ? "smoothed" : "NOT grainy");
}

}  // namespace

BENCHMARK(BM_MeasureFace)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MeasureAndSmoothGrainyFace)->Unit(benchmark::kMicrosecond);
BENCHMARK_MAIN();
