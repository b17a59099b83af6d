#include "nn/classifier_bench.h"

#include <opencv2/core.hpp>
#include <torch/torch.h>

#include "nn/mask_net.h"
#include "nn/onnx_export.h"
#include "nn/blob_tensor.h"
#include "vision/mask_classifier.h"

namespace maskwatch {

std::string engine_name(Engine e) { return e == Engine::OpenCvDnn ? "OpenCV DNN (ONNX)" : "LibTorch eager"; }

ClassifierCase make_classifier_case(Engine engine, int input_size, int batch, int threads) {
  torch::set_num_threads(threads);
  cv::setNumThreads(threads);
  torch::manual_seed(0);
  auto net = std::make_shared<MaskNet>(MaskNetOptions{});
  (*net)->eval();
  std::vector<cv::Mat> faces;
  cv::RNG rng(1);
  for (int i = 0; i < batch; ++i) {
    cv::Mat face(input_size, input_size, CV_8UC3);
    rng.fill(face, cv::RNG::UNIFORM, 0, 255);
    faces.push_back(face);
  }
  const cv::Mat blob = make_blob(faces, input_size);
  ClassifierCase c{engine, input_size, batch, threads, {}, {}};
  if (engine == Engine::OpenCvDnn) {
    OnnxExportOptions o;
    o.input_size = input_size;
    auto cvnet = std::make_shared<cv::dnn::Net>(load_onnx_net(export_classifier_onnx(*net, o), "bench"));
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
