#include "model_fixtures.h"

#include "media/image_io.h"
#include "nn/tflite_import.h"
#include "support.h"
#include "util/paths.h"

namespace maskwatch::test {

void randomize_batchnorm(MobileNetV2& net) {
  torch::NoGradGuard no_grad;
  for (auto& [name, conv] : net->convs_in_order()) {
    const auto n = conv->out_channels;
    conv->bn->weight.copy_(torch::rand({n}) + 0.5);
    conv->bn->bias.copy_(torch::randn({n}) * 0.1);
    conv->bn->running_mean.copy_(torch::randn({n}) * 0.1);
    conv->bn->running_var.copy_(torch::rand({n}) + 0.5);
  }
}

MaskNet imported_mask_net(int num_classes) {
  MaskNetOptions o;
  o.num_classes = num_classes;
  MaskNet net(o);
  import_tflite(asset(kQuantBackbone), net->backbone);
  net->eval();
  return net;
}

std::vector<cv::Mat> real_images() {
  std::vector<cv::Mat> out;
  for (const char* f : {"samples/imagenet/cat.bmp", "samples/imagenet/parrot.jpg", "samples/imagenet/hot_dog.jpg",
                        "data/seed-masks/with_mask/0-with-mask.jpg", "data/seed-masks/without_mask/0.jpg",
                        "data/seed-masks/with_mask/augmented_image_1.jpg"})
    out.push_back(load_image_or_throw(shared_path(f)));
  return out;
}

}  // namespace maskwatch::test
