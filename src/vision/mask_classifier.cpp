#include "vision/mask_classifier.h"

#include <cstring>

#include <fmt/format.h>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <spdlog/spdlog.h>

#include <malloc.h>

#include <cmath>
#include <optional>

#include "model/preprocess.h"
#include "util/error.h"
#include "util/files.h"
#include "util/sha256.h"

namespace maskwatch {

namespace {
// Parses and checks; returns the model and its first input's shape.
std::pair<onnx::ModelProto, std::vector<int64_t>> parse_checked_onnx(const std::string& bytes,
                                                                     const std::string& origin) {
  onnx::ModelProto proto;
  if (bytes.empty() || !proto.ParseFromString(bytes))
    throw Error(fmt::format("{}: not an ONNX model (protobuf does not parse; truncated or corrupted?)", origin));
  try {
    onnx::checker::check_model(proto);
  } catch (const std::exception& e) {
    std::string why = e.what();
    why = why.substr(0, why.find('\n'));
    throw Error(fmt::format("{}: invalid ONNX model ({})", origin, why));
  }
  if (proto.graph().input_size() < 1 || proto.graph().output_size() < 1)
    throw Error(fmt::format("{}: ONNX graph has no input or output", origin));
  // The checker does not compare an initializer's bytes with its dims; OpenCV trusts the
  // dims and would read past the data, so check here.
  for (const auto& t : proto.graph().initializer()) {
    int64_t n = 1;
    for (auto d : t.dims()) {
      if (d < 0 || d > (int64_t{1} << 31))
        throw Error(fmt::format("{}: initializer '{}' has invalid dims", origin, t.name()));
      n *= d;
      if (n > (int64_t{1} << 31)) throw Error(fmt::format("{}: initializer '{}' is too large", origin, t.name()));
    }
    int64_t elem = 0;
    switch (t.data_type()) {
      case onnx::TensorProto::FLOAT:
      case onnx::TensorProto::INT32: elem = 4; break;
      case onnx::TensorProto::FLOAT16: elem = 2; break;
      case onnx::TensorProto::INT64:
      case onnx::TensorProto::DOUBLE: elem = 8; break;
      case onnx::TensorProto::INT8:
      case onnx::TensorProto::UINT8: elem = 1; break;
      default: throw Error(fmt::format("{}: initializer '{}' has an unsupported type", origin, t.name()));
    }
    const int64_t have =
        t.has_raw_data()
            ? static_cast<int64_t>(t.raw_data().size())
            : elem * (t.float_data_size() + t.int32_data_size() + t.int64_data_size() + t.double_data_size());
    if (have != n * elem)
      throw Error(
          fmt::format("{}: initializer '{}' holds {} bytes, its dims need {}", origin, t.name(), have, n * elem));
  }
  std::vector<int64_t> input_shape;
  for (const auto& d : proto.graph().input(0).type().tensor_type().shape().dim())
    input_shape.push_back(d.has_dim_value() ? d.dim_value() : -1);
  return {std::move(proto), std::move(input_shape)};
}

cv::dnn::Net read_checked_net(const std::string& bytes, const std::string& origin) {
  cv::dnn::Net net;
  try {
    net = cv::dnn::readNetFromONNX(bytes.data(), bytes.size());
  } catch (const cv::Exception& e) {
    throw Error(fmt::format("{}: OpenCV cannot load this ONNX model ({})", origin, e.err));
  }
  if (net.empty()) throw Error(fmt::format("{}: OpenCV loaded an empty network", origin));
  net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
  net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
  return net;
}
}  // namespace

std::vector<int64_t> check_onnx_bytes(const std::string& bytes, const std::string& origin) {
  return parse_checked_onnx(bytes, origin).second;
}

cv::dnn::Net load_onnx_net(const std::string& bytes, const std::string& origin) {
  check_onnx_bytes(bytes, origin);
  return read_checked_net(bytes, origin);
}

std::string inference_engine_name(InferenceEngine e) {
  return e == InferenceEngine::Xnnpack ? "XNNPACK" : "OpenCV DNN";
}

namespace {
// The model file's bytes, checked against the sidecar's sha256.
std::string read_verified_model(const std::filesystem::path& onnx_path, const std::filesystem::path& sidecar,
                                const ModelMeta& meta) {
  std::string bytes = read_file_text(onnx_path, "model file");
  if (sha256_hex(bytes) != meta.onnx_sha256)
    throw Error(fmt::format("{} does not match its sidecar {} (sha256 differs): export them together",
                            onnx_path.string(), sidecar.string()));
  return bytes;
}
}  // namespace

MaskClassifier::MaskClassifier(const std::filesystem::path& onnx_path, std::filesystem::path sidecar,
                               InferenceEngine engine, int threads, MemberLoading members) {
  // Said here, in the user's terms, before the sidecar's name (derived from this one) confuses it.
  std::error_code ec;
  if (onnx_path.empty()) throw Error("model: empty path (give a model.onnx)");
  if (std::filesystem::is_directory(onnx_path, ec))
    throw Error(fmt::format("model {} is a folder: give the model.onnx inside it", onnx_path.string()));
  if (!std::filesystem::exists(onnx_path, ec))  // not "sidecar not found: <other name>.json"
    throw Error(fmt::format("model not found: {}", onnx_path.string()));
  if (onnx_path.extension() == ".json") {  // an ensemble, or a model's sidecar given by mistake
    if (!sidecar.empty()) throw Error(fmt::format("{}: an ensemble's file has no sidecar", onnx_path.string()));
    meta_ = ModelMeta::load(onnx_path);
    if (!meta_.is_ensemble())
      throw Error(
          fmt::format("{} is a model's sidecar, not an ensemble: give the .onnx model beside it", onnx_path.string()));
    load_members(onnx_path, engine, threads, members);
    return;
  }
  if (sidecar.empty()) sidecar = sidecar_path(onnx_path);
  meta_ = ModelMeta::load(sidecar);
  if (meta_.is_ensemble())
    throw Error(fmt::format("{}: its sidecar {} describes an ensemble: give {} as the model", onnx_path.string(),
                            sidecar.string(), sidecar.string()));
  // Memory: the file's bytes, the parsed protobuf, the converted weights and XNNPACK's packed
  // weights are each about the model's size (9.5 MB); they are dropped in turn so that at most
  // two are held at once, and only the packed weights stay (peak RSS is a runtime target).
  auto bytes = read_verified_model(onnx_path, sidecar, meta_);
  auto [proto, shape] = parse_checked_onnx(bytes, onnx_path.string());
  // The sidecar's input size must be the one the network was exported for: a hand-edited
  // size would run (the graph is fully convolutional) but silently lose accuracy.
  if (shape.size() == 4 && shape[2] > 0 && shape[3] > 0 &&
      (shape[2] != meta_.input_size || shape[3] != meta_.input_size))
    throw Error(fmt::format("{}: the model takes {}x{} input but its sidecar {} says {}x{}", onnx_path.string(),
                            shape[3], shape[2], sidecar.string(), meta_.input_size, meta_.input_size));
  if (engine == InferenceEngine::Xnnpack) {
    std::string().swap(bytes);
    try {
      auto reload = [onnx_path, sidecar, meta = meta_] {
        return parse_checked_onnx(read_verified_model(onnx_path, sidecar, meta), onnx_path.string()).first;
      };
      xnn_ = std::make_unique<XnnpackNet>(std::move(proto), meta_.input_size,
                                          threads > 0 ? threads : cv::getNumThreads(), reload);
    } catch (const Error& e) {
      spdlog::warn("{}: {}; using OpenCV DNN instead", onnx_path.string(), e.what());
    }
  }
  if (!xnn_) {
    onnx::ModelProto().Swap(&proto);
    if (bytes.empty()) bytes = read_verified_model(onnx_path, sidecar, meta_);
    net_ = read_checked_net(bytes, onnx_path.string());
  }
  // The bytes, protobuf and converted weights freed above sit in the middle of the heap, where
  // glibc keeps them resident until asked (8.5 MB for the shipped model, measured with
  // /proc/self/status before and after).
  malloc_trim(0);
  // Probe: one forward must give one probability per class.
  const cv::Mat probe = forward_blob(
      make_blob({cv::Mat(meta_.input_size, meta_.input_size, CV_8UC3, cv::Scalar::all(128))}, meta_.input_size));
  if (probe.rows != 1 || probe.cols != static_cast<int>(meta_.classes.size()))
    throw Error(fmt::format("{}: model gives {} outputs but the sidecar lists {} classes", onnx_path.string(),
                            probe.total(), meta_.classes.size()));
  const double sum = cv::sum(probe)[0];
  if (!std::isfinite(sum) || std::abs(sum - 1.0) > 1e-3)
    throw Error(
        fmt::format("{}: model output is not a probability distribution (sums to {})", onnx_path.string(), sum));
}

void MaskClassifier::check_member(const std::filesystem::path& path, const EnsembleMember& m,
                                  const ModelMeta& meta) const {
  // The member's file matches its own sidecar; this checks it is the model the ensemble (and its
  // gate) was made with.
  if (meta.onnx_sha256 != m.sha256)
    throw Error(fmt::format("ensemble {}: member {} is not the model it was made with (sha256 {}... against {}...): "
                            "make the ensemble again (maskwatch ensemble), or give --model {} alone",
                            ensemble_path_.string(), path.string(), meta.onnx_sha256.substr(0, 12),
                            m.sha256.substr(0, 12), path.string()));
  if (meta.classes != meta_.classes || meta.input_size != meta_.input_size)
    throw Error(fmt::format("ensemble {}: member {} has other classes or another input size than the ensemble",
                            ensemble_path_.string(), path.string()));
}

std::filesystem::path MaskClassifier::existing_member(const EnsembleMember& m) const {
  const auto path = member_path(ensemble_path_, m);
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw Error(fmt::format("ensemble {}: member {} not found (or not a regular file)", ensemble_path_.string(),
                            path.string()));
  return path;
}

MaskClassifier MaskClassifier::build_member(const EnsembleMember& m) const {
  const auto path = existing_member(m);
  MaskClassifier member(path, {}, member_engine_, member_threads_);
  check_member(path, m, member.meta_);
  return member;
}

void MaskClassifier::load_members(const std::filesystem::path& ensemble_path, InferenceEngine engine, int threads,
                                  MemberLoading loading) {
  ensemble_path_ = ensemble_path;
  member_engine_ = engine;
  member_threads_ = threads;
  // Without a cascade every face needs every member at once.
  const bool defer = loading == MemberLoading::WhenNeeded && meta_.cascade_threshold > 0;
  for (const auto& m : meta_.members) {
    if (!defer || members_.empty()) {
      members_.push_back(build_member(m));
      continue;
    }
    // A member built later has its files checked now, as building it would: its sidecar, its
    // file against the sidecar's sha256 (the bytes are read and dropped), then against the
    // ensemble. The ONNX graph itself is parsed when it is built (and checked against the
    // ensemble once more then: the files may have changed in between).
    const auto path = existing_member(m);
    const auto sidecar = sidecar_path(path);
    const ModelMeta meta = ModelMeta::load(sidecar);
    if (meta.is_ensemble())
      throw Error(fmt::format("{}: its sidecar {} describes an ensemble: give {} as the model", path.string(),
                              sidecar.string(), sidecar.string()));
    read_verified_model(path, sidecar, meta);
    check_member(path, m, meta);
    deferred_.push_back(m);
  }
}

void MaskClassifier::build_deferred_members() {
  spdlog::info("classifier: a face the first model of {} is unsure of: building the other {}",
               ensemble_path_.string(), deferred_.size());
  // Each off the list once built: if one fails (a one-line error), none is counted twice when the
  // next face tries again.
  while (!deferred_.empty()) {
    members_.push_back(build_member(deferred_.front()));
    deferred_.erase(deferred_.begin());
  }
}

InferenceEngine MaskClassifier::engine() const {
  if (!members_.empty()) return members_.front().engine();
  return xnn_ ? InferenceEngine::Xnnpack : InferenceEngine::OpenCvDnn;
}

std::vector<Prediction> MaskClassifier::classify_batched(const std::vector<cv::Mat>& crops, int batch) {
  std::vector<Prediction> out;
  out.reserve(crops.size());
  for (size_t i = 0; i < crops.size(); i += static_cast<size_t>(batch)) {
    const std::vector<cv::Mat> part(
        crops.begin() + static_cast<long>(i),
        crops.begin() + static_cast<long>(std::min(crops.size(), i + static_cast<size_t>(batch))));
    auto preds = classify(part);
    std::move(preds.begin(), preds.end(), std::back_inserter(out));
  }
  return out;
}

cv::Mat MaskClassifier::forward_blob(const cv::Mat& blob) {
  if (!members_.empty()) return forward_members(blob);
  if (xnn_) return xnn_->forward(blob);
  try {
    net_.setInput(blob);
    cv::Mat out = net_.forward();
    return out.reshape(1, blob.size[0]).clone();
  } catch (const cv::Exception& e) {
    throw Error(fmt::format("classifier forward failed: {}", e.err));
  }
}

cv::Mat MaskClassifier::forward_members(const cv::Mat& blob) {
  cv::Mat first = members_.front().forward_blob(blob);
  // The faces the others must see: all, or (a cascade) those the first member is less sure of.
  std::vector<int> unsure;
  for (int r = 0; r < first.rows; ++r) {
    double top = 0;
    cv::minMaxLoc(first.row(r), nullptr, &top);
    // (NaN is never sure.)
    if (meta_.cascade_threshold <= 0 || !(top >= meta_.cascade_threshold)) unsure.push_back(r);
  }
  // Built before the counts: a build that fails leaves no face counted that got no answer.
  if (!unsure.empty() && !deferred_.empty()) build_deferred_members();
  cascade_stats_.faces += static_cast<size_t>(first.rows);
  cascade_stats_.all_members += unsure.size();
  if (unsure.empty()) return first;
  const bool all = unsure.size() == static_cast<size_t>(first.rows);
  cv::Mat sub = blob, sum;
  if (all) {
    sum = first;
  } else {  // the unsure faces' samples, one contiguous [k, C, H, W] blob
    if (!blob.isContinuous()) throw Error("classifier: an ensemble's cascade needs a continuous input blob");
    std::vector<int> shape(blob.size.p, blob.size.p + blob.dims);
    shape[0] = static_cast<int>(unsure.size());
    sub.create(blob.dims, shape.data(), blob.type());
    const size_t sample_bytes = blob.total() * blob.elemSize() / static_cast<size_t>(blob.size[0]);
    for (size_t k = 0; k < unsure.size(); ++k) {
      std::memcpy(sub.data + k * sample_bytes, blob.data + static_cast<size_t>(unsure[k]) * sample_bytes, sample_bytes);
      sum.push_back(first.row(unsure[k]));
    }
  }
  for (size_t i = 1; i < members_.size(); ++i) sum += members_[i].forward_blob(sub);
  sum /= static_cast<double>(members_.size());
  if (all) return sum;
  for (size_t k = 0; k < unsure.size(); ++k) sum.row(static_cast<int>(k)).copyTo(first.row(unsure[k]));
  return first;
}

std::vector<Prediction> MaskClassifier::classify(const std::vector<cv::Mat>& bgr_crops) {
  std::vector<Prediction> out;
  if (bgr_crops.empty()) return out;
  // Resized once: the gate measures the face on exactly the pixels the classifier sees, and a
  // grainy face is smoothed first (model/face_quality.h).
  std::vector<cv::Mat> sized;
  std::vector<FaceQuality> quality;
  sized.reserve(bgr_crops.size());
  for (const auto& img : bgr_crops) {
    if (img.empty() || img.type() != CV_8UC3) throw Error("classifier expects non-empty 8-bit BGR crops");
    const cv::Mat s = resize_square(img, meta_.input_size);
    quality.push_back(measure_face_quality(s));
    sized.push_back(smoothed_if_noisy(s, quality.back()));
  }
  const cv::Mat probs = forward_blob(make_blob(sized, meta_.input_size));
  const QualityGate& gate = meta_.quality_gate;
  for (int i = 0; i < probs.rows; ++i) {
    Prediction p;
    p.probs.assign(probs.ptr<float>(i), probs.ptr<float>(i) + probs.cols);
    const auto best = std::max_element(p.probs.begin(), p.probs.end());
    p.label = static_cast<int>(best - p.probs.begin());
    p.score = *best;
    p.quality = quality[static_cast<size_t>(i)];
    p.p_right = gate.p_right(p.quality, p.probs);
    p.answered = gate.answers(p.p_right);
    out.push_back(std::move(p));
  }
  return out;
}

bool MaskClassifier::trained_on_face_crops() const { return meta_.trained_on_face_crops(); }

void MaskClassifier::warn_if_crops_differ(bool given_face_crops, const std::string& model) const {
  if (trained_on_face_crops() == given_face_crops) return;
  if (given_face_crops)
    spdlog::warn(
        "{} was trained on whole images (train --no-face-crops) and is given face crops here: its answers on them "
        "were never measured (train without --no-face-crops for run, detect, serve and scenes)",
        model);
  else
    spdlog::warn(
        "{} was trained on face crops and --no-face-crops gives it whole images: its answers on them were never "
        "measured",
        model);
}

}  // namespace maskwatch
