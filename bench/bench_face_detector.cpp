// The face detector per 640x480 frame: by model, alone and right after the classifier (as the
// pipeline runs it), and its decoding alone. `maskwatch bench` times each detector in a fresh
// process; this one puts the stock and the fine-tuned YuNet 2023 n (the same graph) side by
// side in one process, so a difference between them is theirs (README "Real time").
// Run: build/bench/bench_face_detector
#include <benchmark/benchmark.h>

#include <fmt/format.h>

#include <algorithm>
#include <opencv2/core.hpp>

#include "perf/pipeline_bench.h"
#include "util/paths.h"
#include "util/threads.h"
#include "vision/crop.h"
#include "vision/face_detector.h"
#include "vision/mask_classifier.h"
#include "vision/pipeline.h"
#include "vision/yunet_2023.h"

namespace {

using namespace maskwatch;

const char* const kModels[] = {"yunet-n", "yunet-n-scenes"};

// Frames of the sample clip: one face (arg 1) or a mosaic of four (arg 4).
const std::vector<cv::Mat>& frames(int faces) {
  static const auto one = pipeline_bench_frames(shared_data_dir() / "samples/video/webcam-mask-on-off.mp4", 1);
  static const auto four = pipeline_bench_frames(shared_data_dir() / "samples/video/webcam-mask-on-off.mp4", 4);
  return faces == 1 ? one : four;
}

void BM_Detect(benchmark::State& state) {
  set_compute_threads(0);
  FaceDetectorOptions o;
  o.model = kModels[state.range(0)];
  FaceDetector detector(o);
  const auto& f = frames(static_cast<int>(state.range(1)));
  size_t i = 0, found = 0;
  for (auto _ : state) found += detector.detect(f[i++ % f.size()]).size();
  state.SetLabel(fmt::format("{}, {:.2f} faces found", kModels[state.range(0)],
                             static_cast<double>(found) / static_cast<double>(std::max<size_t>(1, i))));
}

// Decoding the 12 outputs of a 384x288 input: every cell's score, candidates over 0.6. The
// fine-tuned model raises each score to an exponent (pow) where the stock one takes a sqrt.
void BM_Decode(benchmark::State& state) {
  const cv::Size input(384, 288);
  std::vector<cv::Mat> outs;
  cv::RNG rng(7);
  for (int width : {1, 1, 1, 1, 1, 1, 4, 4, 4, 10, 10, 10}) {
    const int stride = 8 << (outs.size() % 3);
    cv::Mat m(1, (input.width / stride) * (input.height / stride) * width, CV_32F);
    rng.fill(m, cv::RNG::UNIFORM, 0.0, width == 1 ? 0.5 : 1.0);  // scores mostly low, as in a frame
    outs.push_back(m.reshape(1, {1, m.cols / width, width}));
  }
  const float exponent = state.range(0) ? 1.3f : 1.0f;
  for (auto _ : state) benchmark::DoNotOptimize(decode_yunet_2023(outs, input, 0.6f, "bench", exponent).size());
  state.SetLabel(exponent == 1.0f ? "sqrt" : "pow");
}

// Detection as the pipeline runs it: right after the classifier's forwards on the four faces
// of the previous frame (its own XNNPACK thread pool); only the detection is timed.
void BM_DetectAfterClassify(benchmark::State& state) {
  set_compute_threads(0);
  FaceDetector detector;
  MaskClassifier classifier(default_model_path());
  const double margin = PipelineOptions{}.crop_margin;
  const auto& f = frames(4);
  size_t i = 0;
  std::vector<Face> faces = detector.detect(f[0]);
  for (auto _ : state) {
    state.PauseTiming();
    for (const auto& face : faces)
      benchmark::DoNotOptimize(classifier.classify({crop_face(f[i % f.size()], face.crop_box, margin)}));
    state.ResumeTiming();
    faces = detector.detect(f[++i % f.size()]);
  }
}

}  // namespace

BENCHMARK(BM_Detect)->ArgsProduct({{0, 1}, {1, 4}})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_DetectAfterClassify)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Decode)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);
BENCHMARK_MAIN();
