// What privacy costs per served frame (serve's latest.jpg / MJPEG path): the copy of the
// frame and the hiding of its faces, on a 640x480 frame with 1 or 4 faces of 120 px.
// Run: build/bench/bench_privacy
#include <benchmark/benchmark.h>

#include <opencv2/core.hpp>

#include "vision/privacy.h"

namespace {

void BM_HideFaces(benchmark::State& state) {
  const auto mode = static_cast<maskwatch::FacePrivacy>(state.range(0));
  const int faces = static_cast<int>(state.range(1));
  cv::Mat frame(480, 640, CV_8UC3);
  cv::randu(frame, cv::Scalar::all(0), cv::Scalar::all(255));
  std::vector<cv::Rect2f> boxes;
  for (int i = 0; i < faces; ++i) boxes.emplace_back(40.f + 150.f * static_cast<float>(i), 150.f, 120.f, 120.f);
  for (auto _ : state) {
    cv::Mat img = frame.clone();  // the served frame is shared: privacy works on a copy
    maskwatch::hide_faces(img, boxes, 0.5, mode);
    benchmark::DoNotOptimize(img.data);
  }
  state.SetLabel(maskwatch::privacy_name(mode));
}

}  // namespace

BENCHMARK(BM_HideFaces)
    ->ArgsProduct({{0, 1, 2}, {1, 4}})
    ->ArgNames({"mode", "faces"})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK_MAIN();
