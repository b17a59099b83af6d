#include "vision/yunet_2023.h"

#include <fmt/format.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>
#include <set>

#include "util/error.h"
#include "vision/xnnpack_graph.h"

namespace maskwatch {
namespace {

constexpr int kStrides[3] = {8, 16, 32};
constexpr int kAlign = 32;  // the coarsest stride: both input sides must be multiples of it

float clamp01(float v) { return std::min(1.0f, std::max(0.0f, v)); }

std::string shape_of(const cv::Mat& m) {
  std::vector<int> dims(m.size.p, m.size.p + m.dims);
  return fmt::format("[{}]", fmt::join(dims, ", "));
}

// Rows x width of one output, checked against the cells its stride gives.
const float* checked(const cv::Mat& m, const std::string& name, int cells, int width, const std::string& model) {
  const bool ok = m.type() == CV_32F && m.isContinuous() && m.total() == static_cast<size_t>(cells) * width &&
                  m.size[m.dims - 1] == width;
  if (!ok)
    throw Error(fmt::format("face model {}: output {} is {}, expected [1, {}, {}] float32 for this input", model, name,
                            shape_of(m), cells, width));
  return m.ptr<float>();
}

}  // namespace

const std::vector<std::string>& yunet_2023_output_names() {
  static const std::vector<std::string> names = {"cls_8",  "cls_16",  "cls_32",  "obj_8", "obj_16", "obj_32",
                                                 "bbox_8", "bbox_16", "bbox_32", "kps_8", "kps_16", "kps_32"};
  return names;
}

std::vector<FaceCandidate> decode_yunet_2023(const std::vector<cv::Mat>& outs, cv::Size input, float threshold,
                                             const std::string& model, float score_exponent) {
  const auto& names = yunet_2023_output_names();
  if (outs.size() != names.size())
    throw Error(fmt::format("face model {}: {} outputs, expected {}", model, outs.size(), names.size()));
  if (input.width % kAlign || input.height % kAlign || input.width <= 0 || input.height <= 0)
    throw Error(fmt::format("YuNet 2023 input {}x{}: sides must be positive multiples of {}", input.width, input.height,
                            kAlign));
  std::vector<FaceCandidate> found;
  for (int k = 0; k < 3; ++k) {
    const int s = kStrides[k], cols = input.width / s, rows = input.height / s, cells = cols * rows;
    const float* cls = checked(outs[k], names[k], cells, 1, model);
    const float* obj = checked(outs[3 + k], names[3 + k], cells, 1, model);
    const float* box = checked(outs[6 + k], names[6 + k], cells, 4, model);
    const float* kps = checked(outs[9 + k], names[9 + k], cells, 10, model);
    for (int i = 0; i < cells; ++i) {
      const float raw = clamp01(cls[i]) * clamp01(obj[i]);
      const float score = score_exponent == 1.0f ? std::sqrt(raw) : std::pow(raw, 0.5f * score_exponent);
      if (!(score >= threshold)) continue;  // also drops NaN
      const float r = static_cast<float>(i / cols), c = static_cast<float>(i % cols), fs = static_cast<float>(s);
      const float* b = box + 4 * i;
      const float cx = (c + b[0]) * fs, cy = (r + b[1]) * fs;
      const float w = std::exp(b[2]) * fs, h = std::exp(b[3]) * fs;
      FaceCandidate f;
      f.box = cv::Rect2f(cx - w / 2, cy - h / 2, w, h);
      f.score = score;
      for (int p = 0; p < 5; ++p)
        f.landmarks[static_cast<size_t>(p)] = {(c + kps[10 * i + 2 * p]) * fs, (r + kps[10 * i + 2 * p + 1]) * fs};
      found.push_back(f);
    }
  }
  return found;
}

bool Yunet2023::has_2023_outputs(const cv::dnn::Net& net) {
  const auto got = net.getUnconnectedOutLayersNames();
  const std::set<std::string> have(got.begin(), got.end());
  const auto& want = yunet_2023_output_names();
  return have == std::set<std::string>(want.begin(), want.end());
}

Yunet2023::~Yunet2023() = default;

Yunet2023::Yunet2023(const std::filesystem::path& model, cv::dnn::Net net, const std::vector<uint8_t>* onnx_bytes,
                     int threads)
    : path_(model), net_(std::move(net)), out_names_(yunet_2023_output_names()) {
  if (!has_2023_outputs(net_)) {
    const auto got = net_.getUnconnectedOutLayersNames();
    throw Error(fmt::format("face model {} is not a 2023 YuNet: its outputs are {}, expected {}", model.string(),
                            fmt::join(got, ", "), fmt::join(out_names_, ", ")));
  }
  net_.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
  if (onnx_bytes) {
    onnx::ModelProto proto;
    if (!proto.ParseFromArray(onnx_bytes->data(), static_cast<int>(onnx_bytes->size())))
      throw Error(fmt::format("face model {} does not parse as ONNX", model.string()));
    try {
      xnn_ = std::make_unique<XnnpackGraph>(std::move(proto), out_names_, threads > 0 ? threads : cv::getNumThreads());
    } catch (const Error& e) {
      throw Error(fmt::format("face model {} cannot run on XNNPACK ({}); --engine opencv runs it on OpenCV DNN",
                              model.string(), e.what()));
    }
    net_ = cv::dnn::Net();  // not needed any more
  }
  // One probe forward at the smallest input: a graph with these names but other shapes is
  // refused now, with the shape that differs, not on the first frame.
  try {
    detect(cv::Mat(kAlign * 2, kAlign * 2, CV_8UC3, cv::Scalar::all(128)), 1.0f);
  } catch (const cv::Exception& e) {
    throw Error(fmt::format("face model {} does not run as a 2023 YuNet: {}", model.string(), e.err));
  }
}

std::vector<FaceCandidate> Yunet2023::detect(const cv::Mat& bgr, float threshold) {
  // Pad bottom/right to multiples of 32: boxes keep their coordinates.
  const auto up = [](int v) { return std::max(kAlign, (v + kAlign - 1) / kAlign * kAlign); };
  const cv::Size input(up(bgr.cols), up(bgr.rows));
  if (xnn_) {
    // Written in place into XNNPACK's input (BGR 0-255; HWC is its NHWC as it is), whose
    // padding XNNPACK's graph keeps zero.
    cv::Mat roi = xnn_->input(input, bgr.size());
    bgr.convertTo(roi, CV_32F);
    return decode_yunet_2023(xnn_->run(), input, threshold, path_.string(), score_exponent_);
  }
  const cv::Mat* in = &bgr;
  if (input != bgr.size()) {
    cv::copyMakeBorder(bgr, padded_, 0, input.height - bgr.rows, 0, input.width - bgr.cols, cv::BORDER_CONSTANT,
                       cv::Scalar::all(0));
    in = &padded_;
  }
  cv::dnn::blobFromImage(*in, blob_, 1.0, cv::Size(), cv::Scalar(), false, false, CV_32F);  // BGR 0-255
  net_.setInput(blob_);
  net_.forward(outs_, out_names_);
  return decode_yunet_2023(outs_, input, threshold, path_.string(), score_exponent_);
}

}  // namespace maskwatch
