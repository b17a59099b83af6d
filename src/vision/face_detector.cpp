#include "vision/face_detector.h"

#include <algorithm>

#include <fmt/format.h>
#include <onnx/onnx_pb.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <opencv2/dnn.hpp>
#include <opencv2/imgproc.hpp>
#include <set>
#include <sstream>

#include "media/area_resize.h"
#include "util/error.h"
#include "util/files.h"
#include "util/paths.h"
#include "util/sha256.h"
#include "vision/face_fusion.h"
#include "vision/yunet_2023.h"

namespace maskwatch {
namespace {

constexpr int kMinDetectSide = 64;
constexpr double kMaxTallness = 4.0;

// A size scaled by `scale`, at least 1 px a side.
cv::Size scaled_size(cv::Size size, double scale) {
  return {std::max(1, static_cast<int>(std::lround(size.width * scale))),
          std::max(1, static_cast<int>(std::lround(size.height * scale)))};
}

// Box corrections fitted by `eval --scenes --fit-boxes` (detect width 320, score >= 0.6) on
// the even-numbered scenes of scenes-dev (README "Face stage"), keyed by the model file's
// sha256, as {a, b} per term (BoxCorrection). Files we do not know get none.
struct KnownCorrection {
  const char* sha256;
  BoxCorrection correction;
};
const std::vector<KnownCorrection>& known_corrections() {
  // yunet_n_320_320 and yunet_n_640_640 hold the same weights (only the exported input size differs).
  static const std::vector<KnownCorrection> known = {
      {"81dbde155e982455488235acb8ec2dec5d647edf7cf7080d33e4abb69b93a0d2",
       {{0.0021f, -0.0021f}, {0.0626f, -0.0041f}, {-0.0014f, -0.0399f}, {-0.0652f, -0.0255f}}},
      {"25a606a145a5b6d7271ae138fbd00eba91dad8b83222ae3f2c7ecd0f4a7b0e31",
       {{0.0021f, -0.0021f}, {0.0626f, -0.0041f}, {-0.0014f, -0.0399f}, {-0.0652f, -0.0255f}}},
      {"50ef07f702a31741ca46a4c0d947773b64143b9362780237bf0d427d6c79bab7",
       {{0.0110f, -0.0066f}, {0.0621f, -0.0001f}, {-0.0649f, -0.0373f}, {-0.0671f, -0.0295f}}},
  };
  return known;
}

std::set<std::string> output_names(const cv::dnn::Net& net) {
  const auto v = net.getUnconnectedOutLayersNames();
  return {v.begin(), v.end()};
}

}  // namespace

cv::Rect2f BoxCorrection::apply(const cv::Rect2f& b, double input_scale) const {
  if (b.width <= 0 || b.height <= 0) return b;
  const float l = static_cast<float>(std::log2(std::max(1.0, b.width * input_scale) / 32.0));
  const auto at = [l](const float(&c)[2]) { return c[0] + c[1] * l; };
  const float cx = b.x + b.width * (0.5f + at(dx)), cy = b.y + b.height * (0.5f + at(dy));
  const float w = b.width * std::exp(at(lw)), h = b.height * std::exp(at(lh));
  return {cx - w / 2, cy - h / 2, w, h};
}

cv::Rect2f BoxCorrection::unapply(const cv::Rect2f& corrected, double input_scale) const {
  if (corrected.width <= 0 || corrected.height <= 0) return corrected;
  cv::Rect2f o = corrected;
  for (int i = 0; i < 6; ++i) {
    const cv::Rect2f c = apply(o, input_scale);
    const float w = o.width * corrected.width / c.width, h = o.height * corrected.height / c.height;
    const float cx = o.x + o.width / 2 + (corrected.x + corrected.width / 2 - c.x - c.width / 2);
    const float cy = o.y + o.height / 2 + (corrected.y + corrected.height / 2 - c.y - c.height / 2);
    o = {cx - w / 2, cy - h / 2, w, h};
  }
  return o;
}

std::string BoxCorrection::to_text() const {
  return fmt::format("{} {} {} {} {} {} {} {}", dx[0], dx[1], dy[0], dy[1], lw[0], lw[1], lh[0], lh[1]);
}

std::optional<BoxCorrection> BoxCorrection::from_text(const std::string& text) {
  BoxCorrection c;
  std::istringstream in(text);
  for (float* v : {&c.dx[0], &c.dx[1], &c.dy[0], &c.dy[1], &c.lw[0], &c.lw[1], &c.lh[0], &c.lh[1]})
    if (!(in >> *v) || !std::isfinite(*v) || std::abs(*v) > 1) return std::nullopt;
  std::string rest;
  if (in >> rest) return std::nullopt;
  return c;
}

BoxCorrection box_correction_of(const std::vector<uint8_t>& bytes) {
  const std::string sha = sha256_hex(bytes);
  for (const auto& k : known_corrections())
    if (sha == k.sha256) return k.correction;
  onnx::ModelProto proto;
  if (!proto.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return {};
  for (const auto& p : proto.metadata_props())
    if (p.key() == kBoxCorrectionMetadataKey) {
      if (auto c = BoxCorrection::from_text(p.value())) return *c;
      spdlog::warn("face model metadata {} = '{}' is not 8 numbers within +-1: no box correction",
                   kBoxCorrectionMetadataKey, p.value());
    }
  return {};
}

float score_exponent_of(const std::vector<uint8_t>& bytes) {
  onnx::ModelProto proto;
  if (!proto.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return 1.0f;
  for (const auto& p : proto.metadata_props())
    if (p.key() == kScoreExponentMetadataKey) {
      try {
        size_t used = 0;
        const float e = std::stof(p.value(), &used);
        if (used == p.value().size() && e >= 0.1f && e <= 10.0f) return e;
      } catch (const std::exception&) {
      }
      spdlog::warn("face model metadata {} = '{}' is not a number in [0.1, 10]: scores as they are",
                   kScoreExponentMetadataKey, p.value());
    }
  return 1.0f;
}

bool BoxCorrection::identity() const {
  for (const float* c : {dx, dy, lw, lh})
    if (c[0] != 0 || c[1] != 0) return false;
  return true;
}

double FaceDetector::input_scale(cv::Size frame) const { return input_scale(frame, opts_.detect_width); }

double FaceDetector::input_scale(cv::Size frame, int width) const {
  if (frame.width <= 0 || frame.height <= 0) return 1.0;
  // Scaled to detect_width wide; an image more than kMaxTallness times taller than wide is
  // scaled to at most that many detect_widths high (a 2 x 120000 px PNG took 1.5 GB at its
  // own size). Photos and frames are far from it (scenes-dev: at most 2.06).
  return std::min({1.0, static_cast<double>(width) / frame.width, kMaxTallness * width / frame.height});
}

const std::vector<FaceModelName>& face_model_names() {
  static const std::vector<FaceModelName> names = {
      {"yunet-2022", kYunetModel, "YuNet 2022, OpenCV zoo"},
      {"yunet-n", "yunet_n_640_640.onnx", "YuNet 2023 n, libfacedetection.train; any input size"},
      {"yunet-s", "yunet_s_320_320.onnx", "YuNet 2023 s: fewer channels, faster, fewer faces"},
      {"yunet-n-scenes", "yunet_n_scenes.onnx", "YuNet 2023 n fine-tuned on annotated scenes by train-faces", true},
  };
  return names;
}

std::string face_model_name_list() {
  std::string names;
  for (const auto& n : face_model_names()) names += std::string(names.empty() ? "" : ", ") + n.name;
  return names;
}

// Chosen on scenes-dev and cost (README "Face stage"): the 2023 n model on XNNPACK at 384 px
// finds more faces (face AP 0.8273 against 0.7957 for YuNet 2022 at 320 px, both with their box
// correction) and costs less (3.0 ms per 640x480 frame against 3.5); fine-tuned on scenes by
// `train-faces` (same graph, same cost) it finds more on scenes it did not learn from (face AP
// 0.8623 against 0.8327 on the odd half when tuned on the even half; 0.8153 against 0.8120 on
// the 210 scenes the shipped one left out).
const char* default_face_model_name() { return "yunet-n-scenes"; }

std::filesystem::path resolve_face_model(const std::filesystem::path& model) {
  const std::string m = model.empty() ? default_face_model_name() : model.string();
  for (const auto& n : face_model_names())
    if (m == n.name) return n.shipped ? shipped_models_dir() / n.file : asset_path(n.file);
  return model;
}

std::filesystem::path default_haar_cascade() {
  for (const char* p : {"/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml",
                        "/usr/share/opencv/haarcascades/haarcascade_frontalface_default.xml"})
    if (std::filesystem::exists(p)) return p;
  return {};
}

FaceDetector::~FaceDetector() = default;
FaceDetector::FaceDetector(FaceDetector&&) noexcept = default;

FaceDetector::FaceDetector(const FaceDetectorOptions& o) : opts_(o) {
  if (opts_.detect_width < 64) throw Error("face detection width must be at least 64 pixels");
  path_ = resolve_face_model(opts_.model);
  if (!std::filesystem::exists(path_)) {
    if (!opts_.model.empty()) {
      // A mistyped name was taken for a file name: say the names there are.
      throw Error(fmt::format("face model not found: {} (give a name: {}; or a YuNet .onnx file)", path_.string(),
                              face_model_name_list()));
    }
    const auto cascade = default_haar_cascade();  // opencv-data's frontal face cascade
    if (cascade.empty() || !haar_.load(cascade.string()))
      throw Error(
          fmt::format("no face detector: YuNet model {} is missing and no Haar cascade was found "
                      "(install opencv-data, or pass --face-model)",
                      path_.string()));
    spdlog::warn("YuNet model {} not found: falling back to the Haar cascade, which often misses masked faces",
                 path_.string());
    return;
  }
  // Read it ourselves first so an empty or unreadable file gives our error, not OpenCV's.
  const auto bytes = read_file_bytes(path_, "face model");
  correction_ = box_correction_of(bytes);
  if (opts_.box_correction) correction_ = *opts_.box_correction;
  cv::dnn::Net net;
  try {
    net = cv::dnn::readNetFromONNX(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  } catch (const cv::Exception& e) {
    throw Error(fmt::format("cannot load face model {}: {}", path_.string(), e.err));
  }
  if (Yunet2023::has_2023_outputs(net)) {
    kind_ = FaceModelKind::Yunet2023;
    yunet_2023_ = std::make_unique<Yunet2023>(path_, std::move(net), opts_.xnnpack ? &bytes : nullptr,
                                              opts_.threads > 0 ? opts_.threads : cv::getNumThreads());
    yunet_2023_->set_score_exponent(score_exponent_of(bytes));
    return;
  }
  const auto outputs = output_names(net);
  const auto& names_2023 = yunet_2023_output_names();
  if (outputs != std::set<std::string>{"loc", "conf", "iou"})
    throw Error(fmt::format(
        "face model {} is not a YuNet face detector: its outputs are {}; YuNet 2023 has {}, YuNet 2022 has loc, "
        "conf, iou",
        path_.string(), fmt::join(outputs, ", "), fmt::join(names_2023, ", ")));
  kind_ = FaceModelKind::Yunet2022;
  try {
    yunet_ = cv::FaceDetectorYN::create(path_.string(), "", cv::Size(opts_.detect_width, opts_.detect_width),
                                        opts_.score_threshold, opts_.nms_threshold, opts_.top_k);
  } catch (const cv::Exception& e) {
    throw Error(fmt::format("cannot load face model {}: {}", path_.string(), e.err));
  }
  if (!yunet_) throw Error("cannot load face model " + path_.string());
  // The names fit; only a forward shows whether the shapes do. One probe at start-up.
  try {
    cv::Mat probe(kMinDetectSide, kMinDetectSide, CV_8UC3, cv::Scalar::all(128)), found;
    yunet_->setInputSize(probe.size());
    yunet_->detect(probe, found);
  } catch (const cv::Exception& e) {
    throw Error(
        fmt::format("face model {} has YuNet 2022's output names but does not run as one: {}", path_.string(), e.err));
  }
}

std::string FaceDetector::description() const {
  if (kind_ == FaceModelKind::Haar) return "Haar cascade (fallback)";
  return fmt::format("{} {} at {} px wide{}, score >= {}, {}",
                     kind_ == FaceModelKind::Yunet2023 ? "YuNet 2023" : "YuNet 2022", path_.filename().string(),
                     opts_.detect_width,
                     opts_.multi_look ? fmt::format(" and {} px, each also mirrored (four looks, fused)", wider_width())
                                      : "",
                     opts_.score_threshold, on_xnnpack() ? "XNNPACK" : "OpenCV DNN");
}

bool FaceDetector::on_xnnpack() const { return yunet_2023_ && yunet_2023_->on_xnnpack(); }

std::vector<Face> FaceDetector::detect_2022(const cv::Mat& small, float threshold) {
  if (small.size() != input_size_) {
    yunet_->setInputSize(small.size());
    input_size_ = small.size();
  }
  if (yunet_->getScoreThreshold() != threshold) yunet_->setScoreThreshold(threshold);
  cv::Mat out;
  yunet_->detect(small, out);
  std::vector<Face> faces;
  for (int r = 0; r < out.rows; ++r) {
    const float* d = out.ptr<float>(r);  // x, y, w, h, 5 landmarks (10), score
    Face f{{d[0], d[1], d[2], d[3]}, d[14], {}, {}};
    for (size_t p = 0; p < 5; ++p) f.landmarks[p] = {d[4 + 2 * p], d[5 + 2 * p]};
    faces.push_back(f);
  }
  return faces;
}

std::vector<Face> FaceDetector::detect_2023(const cv::Mat& small, float threshold) {
  const auto found = yunet_2023_->detect(small, threshold);
  std::vector<cv::Rect2d> boxes;
  std::vector<float> scores;
  for (const auto& c : found) boxes.emplace_back(c.box), scores.push_back(c.score);
  std::vector<int> keep;
  cv::dnn::NMSBoxes(boxes, scores, threshold, opts_.nms_threshold, keep, 1.0f, opts_.top_k);
  std::vector<Face> faces;
  for (int i : keep) {
    const auto& c = found[static_cast<size_t>(i)];
    faces.push_back({c.box, c.score, c.landmarks, {}});
  }
  return faces;
}

std::vector<Face> FaceDetector::detect(const cv::Mat& frame) { return detect(frame, opts_.score_threshold); }

std::vector<Face> FaceDetector::detect(const cv::Mat& frame, float threshold) {
  if (frame.empty()) return {};
  // Haar's faces all score 1: a mean over looks would only drop the faces some looks missed.
  const bool multi_look = opts_.multi_look && kind_ != FaceModelKind::Haar;
  std::vector<Face> faces =
      multi_look ? detect_looks(frame, threshold)
                 : detect_in(frame, {0, 0}, {1, 1}, frame.size(), opts_.detect_width, threshold);
  // Also when some look found a face at the threshold and the fusion voted it out: on the test
  // crops, skipping the retry then lost 18 more masked close-ups (README "Four looks at a still").
  if (!faces.empty() || !opts_.close_up_retry) return faces;
  // A face crop (a face filling most of a small image, cut by or close to its edges) often
  // holds no face for YuNet. Look again with the frame in the middle of a grey canvas three
  // times its size: the frame is then at most a third of the detector's width, with grey room
  // around the face (on the test crops this finds the face in 63 of the 116 where the frame
  // alone finds none, a canvas of two in 53: README "Small close-ups"). Boxes come back in the
  // frame's coordinates, clipped to it. The frame is shrunk before it is framed, so that a
  // large photo never makes a canvas of nine times its pixels.
  cv::Mat shrunk = frame;
  const double r = input_scale({3 * frame.cols, 3 * frame.rows});
  if (r < 1.0) shrink_area(frame, shrunk, scaled_size(frame.size(), r));
  const int px = shrunk.cols, py = shrunk.rows;
  cv::Mat canvas;
  cv::copyMakeBorder(shrunk, canvas, py, py, px, px, cv::BORDER_CONSTANT, cv::Scalar::all(128));
  const cv::Point2d shrink(static_cast<double>(shrunk.cols) / frame.cols,
                           static_cast<double>(shrunk.rows) / frame.rows);
  return detect_in(canvas, {static_cast<float>(px), static_cast<float>(py)}, shrink, frame.size(), opts_.detect_width,
                   threshold);
}

int FaceDetector::wider_width() const {
  return std::max(opts_.detect_width, static_cast<int>(std::lround(opts_.detect_width * 1.25 / 32)) * 32);
}

std::vector<Face> FaceDetector::detect_looks(const cv::Mat& frame, float threshold) {
  // Each look keeps faces down to a third of the threshold, a cheap cut: a weaker vote could
  // only have added under a twelfth of the threshold to a mean of four.
  const float look_threshold = threshold / 3;
  std::vector<std::vector<Face>> looks;
  std::vector<cv::Size> seen;
  for (const int width : {opts_.detect_width, wider_width()}) {
    const double r = input_scale(frame.size(), width);
    const cv::Size input = scaled_size(frame.size(), r);
    if (std::find(seen.begin(), seen.end(), input) != seen.end()) continue;  // a small image: the same pixels
    seen.push_back(input);
    // Scaled once, then mirrored: a large photo is not copied at full size for its mirror.
    cv::Mat scaled = frame, mirror;
    if (r < 1.0) shrink_area(frame, scaled, input);
    cv::flip(scaled, mirror, 1);
    const cv::Point2d shrink(static_cast<double>(input.width) / frame.cols,
                             static_cast<double>(input.height) / frame.rows);
    looks.push_back(detect_in(scaled, {0, 0}, shrink, frame.size(), width, look_threshold));
    looks.push_back(detect_in(mirror, {0, 0}, shrink, frame.size(), width, look_threshold, true));
  }
  // 0.55: the overlap weighted box fusion is usually run at (Solovyev et al. 2019).
  auto faces = fuse_looks(looks, 0.55f, threshold, opts_.nms_threshold);
  if (opts_.top_k > 0 && faces.size() > static_cast<size_t>(opts_.top_k)) faces.resize(static_cast<size_t>(opts_.top_k));
  return faces;
}

std::vector<Face> FaceDetector::detect_in(const cv::Mat& image, cv::Point2f offset, cv::Point2d shrink,
                                          cv::Size frame_size, int width, float threshold, bool mirrored) {
  std::vector<Face> faces;
  const double scale = input_scale(image.size(), width);
  // `in` is the image itself when it is small enough, never a buffer of ours that the image
  // shares: resizing the next frame into such a buffer would overwrite this one (which the
  // caller may still show or encode).
  cv::Mat in = image;
  if (scale < 1.0) {
    shrink_area(image, small_, scaled_size(image.size(), scale));
    in = small_;
  }
  // YuNet 2022's forward throws on inputs under about 60 px a side (its coarsest feature map
  // becomes empty). Pad small images on the right/bottom: boxes keep their coordinates.
  if (in.cols < kMinDetectSide || in.rows < kMinDetectSide) {
    cv::Mat padded;
    cv::copyMakeBorder(in, padded, 0, std::max(0, kMinDetectSide - in.rows), 0, std::max(0, kMinDetectSide - in.cols),
                       cv::BORDER_CONSTANT, cv::Scalar::all(0));
    in = padded;
  }
  switch (kind_) {
    case FaceModelKind::Yunet2023: faces = detect_2023(in, threshold); break;
    case FaceModelKind::Yunet2022: faces = detect_2022(in, threshold); break;
    case FaceModelKind::Haar: {
      cv::Mat gray;
      cv::cvtColor(in, gray, cv::COLOR_BGR2GRAY);
      std::vector<cv::Rect> rects;
      haar_.detectMultiScale(gray, rects, 1.1, 4, 0, cv::Size(24, 24));
      for (const auto& r : rects) faces.push_back({cv::Rect2f(r), 1.0f, {}, {}});
      break;
    }
  }
  // To frame pixels (less the canvas offset of a close-up retry and its shrinking), in the
  // annotators' convention; clipped to the frame; degenerate boxes dropped.
  const float s = static_cast<float>(scale);
  const auto to_frame = [&](cv::Point2f p) {
    return cv::Point2f(static_cast<float>((p.x / s - offset.x) / shrink.x),
                       static_cast<float>((p.y / s - offset.y) / shrink.y));
  };
  const cv::Rect2f bounds(0, 0, static_cast<float>(frame_size.width), static_cast<float>(frame_size.height));
  std::vector<Face> kept;
  for (auto& f : faces) {
    cv::Rect2f in_frame(to_frame(f.box.tl()), to_frame(f.box.br()));
    if (kind_ != FaceModelKind::Haar)  // Haar gives no landmarks: they stay zeros
      for (auto& p : f.landmarks) p = to_frame(p);
    if (mirrored) {  // back to the frame's own side before the correction (its centre shift has a direction)
      Face raw = f;
      raw.box = raw.crop_box = in_frame;
      raw = unmirror_face(raw, static_cast<float>(frame_size.width));
      in_frame = raw.box;
      f.landmarks = raw.landmarks;
    }
    f.crop_box = in_frame & bounds;
    // On a canvas, a "face" mostly on the grey around the frame is not one in the frame.
    if (offset != cv::Point2f(0, 0) && f.crop_box.area() < 0.5f * in_frame.area()) continue;
    // The correction is driven by the face's width in detector pixels.
    f.box = correction_.apply(in_frame, scale * shrink.x) & bounds;
    if (f.box.width >= 4 && f.box.height >= 4 && f.crop_box.width >= 4 && f.crop_box.height >= 4) kept.push_back(f);
  }
  return kept;
}

}  // namespace maskwatch
