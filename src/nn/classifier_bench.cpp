#include "nn/classifier_bench.h"

#include <torch/torch.h>
#include <opencv2/core.hpp>

#include "nn/blob_tensor.h"
#include "nn/mask_net.h"
#include "nn/onnx_export.h"
#include "util/stopwatch.h"
#include "vision/mask_classifier.h"
#include "vision/xnnpack_net.h"

namespace maskwatch {

std::string engine_name(Engine e) {
  switch (e) {
    case Engine::OpenCvDnn: return "OpenCV DNN (ONNX)";
    case Engine::Xnnpack: return "XNNPACK (ONNX)";
    default: return "LibTorch eager";
  }
}

namespace {
std::shared_ptr<MaskNet> random_net() {
  torch::manual_seed(0);
  auto net = std::make_shared<MaskNet>(MaskNetOptions{});
  (*net)->eval();
  return net;
}

cv::Mat random_faces_blob(int input_size, int batch) {
  std::vector<cv::Mat> faces;
  cv::RNG rng(1);
  for (int i = 0; i < batch; ++i) {
    cv::Mat face(input_size, input_size, CV_8UC3);
    rng.fill(face, cv::RNG::UNIFORM, 0, 255);
    faces.push_back(face);
  }
  return make_blob(faces, input_size);
}

std::string onnx_bytes(MaskNet& net, int input_size) {
  OnnxExportOptions o;
  o.input_size = input_size;
  return export_classifier_onnx(net, o);
}
}  // namespace

double classifier_macs(int input_size) {
  auto net = random_net();
  return XnnpackNet(onnx_bytes(*net, input_size), input_size, 1).macs_per_image();
}

double measured_peak_flops(int threads, double seconds) {
  torch::set_num_threads(threads);
  const int64_t n = 1024;
  const auto a = torch::rand({n, n}), b = torch::rand({n, n});
  auto c = torch::mm(a, b);  // warm-up
  double best_s = 1e9;
  Stopwatch total;
  for (int i = 0; i < 5 || total.seconds() < seconds; ++i) {
    Stopwatch sw;
    c = torch::mm(a, b);
    best_s = std::min(best_s, sw.seconds());
  }
  return 2.0 * n * n * n / best_s;
}

ClassifierCase make_classifier_case(Engine engine, int input_size, int batch, int threads) {
  torch::set_num_threads(threads);
  cv::setNumThreads(threads);
  auto net = random_net();
  const cv::Mat blob = random_faces_blob(input_size, batch);
  ClassifierCase c{engine, input_size, batch, threads, {}, {}};
  if (engine == Engine::Xnnpack) {
    auto xnn = std::make_shared<XnnpackNet>(onnx_bytes(*net, input_size), input_size, threads);
    c.state = xnn;
    c.run = [xnn, blob] { (void)xnn->forward(blob); };
  } else if (engine == Engine::OpenCvDnn) {
    auto cvnet = std::make_shared<cv::dnn::Net>(load_onnx_net(onnx_bytes(*net, input_size), "bench"));
    c.state = cvnet;
    c.run = [cvnet, blob] {
      cvnet->setInput(blob);
      cv::Mat out = cvnet->forward();
      (void)out;
    };
  } else {
    auto input = std::make_shared<torch::Tensor>(blob_to_tensor(blob));
    c.state = net;
    c.run = [net, input] {
      torch::InferenceMode guard;
      auto out = torch::softmax((*net)->forward(*input), 1);
      (void)out;
    };
  }
  return c;
}

}  // namespace maskwatch
