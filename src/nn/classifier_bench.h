// Classifier latency cases: the exported model in OpenCV DNN, XNNPACK or LibTorch eager, at a
// given input size, batch and thread count. `maskwatch bench` and bench/ both use them.
#pragma once
#include <functional>
#include <memory>
#include <string>

namespace maskwatch {

enum class Engine { OpenCvDnn, LibTorchEager, Xnnpack };
std::string engine_name(Engine e);

struct ClassifierCase {
  Engine engine;
  int input_size, batch, threads;
  std::function<void()> run;  // one forward of `batch` faces
  std::shared_ptr<void> state;
};

// Multiply-accumulates of one face through the mask network at this input size.
double classifier_macs(int input_size);

// Best single-precision FLOP/s this machine reaches: a 1024x1024 float matrix product in
// LibTorch (OpenBLAS) with `threads` threads, the fastest of repeated runs.
double measured_peak_flops(int threads, double seconds);

// Builds the network (random weights; speed does not depend on them) and a fixed input.
// Sets the LibTorch and OpenCV thread counts.
ClassifierCase make_classifier_case(Engine engine, int input_size, int batch, int threads);

}  // namespace maskwatch
