#include "train/face_tuner.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <opencv2/imgproc.hpp>
#include <numeric>
#include <random>

#include "eval/scene_eval.h"
#include "eval/voc.h"
#include "media/image_io.h"
#include "nn/onnx_conv_graph.h"
#include "util/error.h"
#include "util/files.h"
#include "util/progress.h"
#include "util/seed.h"
#include "vision/face_detector.h"

namespace maskwatch {
namespace {

constexpr int kStrides[3] = {8, 16, 32};
constexpr double kStoreScale = 1.3;  // scenes kept at this x the training width: room for zoom-in

struct Scene {
  cv::Mat image;  // BGR, scaled to kStoreScale x the training width
  std::vector<cv::Rect2f> faces, ignore;
  std::filesystem::path path;          // the photo, read again to refit the box correction
  std::vector<cv::Rect2f> labelled;    // every labelled box as written (photo pixels)
};

struct Sample {
  cv::Mat canvas;
  std::vector<cv::Rect2f> faces, ignore;
};

// Labelled boxes are learned in the base model's own box convention (its box correction undone
// at the product's scale), so that the classifier's crops, cut around the detector's box as its
// training crops were, stay where they were; the correction, recorded in the fine-tuned file,
// maps them to the annotators' convention as it does for the base model.
std::vector<Scene> load_scenes(const FaceTuneOptions& o, const BoxCorrection& correction, FaceTuneReport& r) {
  const auto xmls = voc_annotation_files(o.scenes);
  std::vector<Scene> scenes;
  ProgressBar bar("loading scenes", xmls.size(), "img");
  for (const auto& xml : xmls) {
    bar.advance(1);
    const auto a = parse_voc(xml);
    const auto path = voc_image_path(o.scenes, a);
    if (path.empty()) {
      spdlog::warn("{}: image '{}' not found in {}", xml.string(), a.filename, (o.scenes / "images").string());
      continue;
    }
    if (o.held_out.count(path.filename().string())) {
      ++r.held_out;
      continue;
    }
    std::string why, damage;
    const cv::Mat img = load_image(path, &why, &damage);
    if (img.empty() || !damage.empty()) {  // (grey rows under labelled boxes would teach "no face")
      spdlog::warn("skipping {}: {}", path.string(), img.empty() ? why : damage);
      continue;
    }
    check_voc_image_size(a, path, img.size());  // (boxes of a wrong size had been trained on)
    Scene s;
    s.path = path;
    const double f = kStoreScale * o.width / img.cols;
    cv::resize(img, s.image, cv::Size(), f, f, f < 1 ? cv::INTER_AREA : cv::INTER_LINEAR);
    const double input_scale = static_cast<double>(o.width) / img.cols;
    for (const auto& obj : a.objects) {
      const cv::Rect2f d = correction.unapply(obj.box, input_scale);
      const cv::Rect2f b(static_cast<float>(d.x * f), static_cast<float>(d.y * f), static_cast<float>(d.width * f),
                         static_cast<float>(d.height * f));
      (obj.difficult ? s.ignore : s.faces).push_back(b);
      s.labelled.push_back(obj.box);
      r.faces += obj.difficult ? 0 : 1;
    }
    scenes.push_back(std::move(s));
  }
  bar.finish();
  r.scenes = static_cast<int>(scenes.size());
  if (scenes.empty()) throw Error(fmt::format("{}: no scenes left to train on", o.scenes.string()));
  // Scenes without a labelled face only teach "no face anywhere": a model from them alone is
  // worse than its base, written as if it were better.
  if (r.faces == 0)
    throw Error(fmt::format("{}: none of the {} scenes left to train on has a labelled face (<object> with a box)",
                            o.scenes.string(), scenes.size()));
  return scenes;
}

// One training input: the scene zoomed by --zoom (0.8-1.25) around the product's scale, flipped half of
// the time, its top-left canvas-sized part (padded with zeros below and to the right, as the
// detector pads), brightness and contrast jittered.
Sample augment(const Scene& s, const FaceTuneOptions& o, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> zoom(o.zoom.first, o.zoom.second), gain(0.7, 1.3), offset(-25, 25), unit(0, 1);
  const double f = zoom(rng) / kStoreScale;
  cv::Mat scaled;
  cv::resize(s.image, scaled, cv::Size(), f, f, f < 1 ? cv::INTER_AREA : cv::INTER_LINEAR);
  const bool flip = unit(rng) < 0.5;
  if (flip) cv::flip(scaled, scaled, 1);
  const int ox = scaled.cols > o.canvas ? std::uniform_int_distribution<int>(0, scaled.cols - o.canvas)(rng) : 0;
  const int oy = scaled.rows > o.canvas ? std::uniform_int_distribution<int>(0, scaled.rows - o.canvas)(rng) : 0;
  const cv::Rect view(ox, oy, std::min(o.canvas, scaled.cols - ox), std::min(o.canvas, scaled.rows - oy));
  Sample out;
  out.canvas = cv::Mat::zeros(o.canvas, o.canvas, CV_8UC3);
  scaled(view).convertTo(out.canvas(cv::Rect(0, 0, view.width, view.height)), CV_8U, gain(rng), offset(rng));

  const cv::Rect2f visible(0, 0, static_cast<float>(view.width), static_cast<float>(view.height));
  const auto place = [&](cv::Rect2f b) {
    b = cv::Rect2f(b.x * static_cast<float>(f), b.y * static_cast<float>(f), b.width * static_cast<float>(f),
                   b.height * static_cast<float>(f));
    if (flip) b.x = static_cast<float>(scaled.cols) - b.x - b.width;
    b.x -= static_cast<float>(ox), b.y -= static_cast<float>(oy);
    return b;
  };
  for (const auto& face : s.faces) {
    const cv::Rect2f b = place(face), in = b & visible;
    if (in.area() <= 0) continue;
    const bool whole_enough = in.area() >= 0.6f * b.area();
    const bool big_enough = std::min(in.width, in.height) >= o.min_face;
    (whole_enough && big_enough ? out.faces : out.ignore).push_back(whole_enough ? in : b);
  }
  for (const auto& ig : s.ignore) out.ignore.push_back(place(ig));
  return out;
}

struct Priors {
  torch::Tensor x, y, stride;  // [P]: the cell's top-left point in input pixels, and its stride
};

Priors make_priors(int side) {
  std::vector<float> x, y, s;
  for (int stride : kStrides)
    for (int r = 0; r < side / stride; ++r)
      for (int c = 0; c < side / stride; ++c)
        x.push_back(static_cast<float>(c * stride)), y.push_back(static_cast<float>(r * stride)),
            s.push_back(static_cast<float>(stride));
  const auto t = [](std::vector<float>& v) {
    return torch::from_blob(v.data(), {static_cast<int64_t>(v.size())}, torch::kFloat32).clone();
  };
  return {t(x), t(y), t(s)};
}

torch::Tensor boxes_tensor(const std::vector<cv::Rect2f>& boxes) {  // [B, 4] x1 y1 x2 y2
  std::vector<float> v;
  for (const auto& b : boxes) v.insert(v.end(), {b.x, b.y, b.x + b.width, b.y + b.height});
  return torch::from_blob(v.data(), {static_cast<int64_t>(boxes.size()), 4}, torch::kFloat32).clone();
}

// Pairwise IoU of a [A, 4] and b [B, 4] -> [A, B].
torch::Tensor pairwise_iou(const torch::Tensor& a, const torch::Tensor& b) {
  const auto lt = torch::max(a.index({torch::indexing::Slice(), torch::indexing::None, torch::indexing::Slice(0, 2)}),
                             b.index({torch::indexing::None, torch::indexing::Slice(), torch::indexing::Slice(0, 2)}));
  const auto rb = torch::min(a.index({torch::indexing::Slice(), torch::indexing::None, torch::indexing::Slice(2, 4)}),
                             b.index({torch::indexing::None, torch::indexing::Slice(), torch::indexing::Slice(2, 4)}));
  const auto wh = (rb - lt).clamp_min(0);
  const auto inter = wh.select(2, 0) * wh.select(2, 1);
  const auto area = [](const torch::Tensor& t) { return (t.select(1, 2) - t.select(1, 0)) * (t.select(1, 3) - t.select(1, 1)); };
  return inter / (area(a).unsqueeze(1) + area(b).unsqueeze(0) - inter + 1e-9);
}

// GIoU of matching rows of a and b ([K, 4] each) -> [K].
torch::Tensor giou(const torch::Tensor& a, const torch::Tensor& b) {
  const auto area = [](const torch::Tensor& t) {
    return (t.select(1, 2) - t.select(1, 0)).clamp_min(0) * (t.select(1, 3) - t.select(1, 1)).clamp_min(0);
  };
  const auto lt = torch::max(a.slice(1, 0, 2), b.slice(1, 0, 2)), rb = torch::min(a.slice(1, 2, 4), b.slice(1, 2, 4));
  const auto wh = (rb - lt).clamp_min(0);
  const auto inter = wh.select(1, 0) * wh.select(1, 1);
  const auto uni = area(a) + area(b) - inter + 1e-9;
  const auto elt = torch::min(a.slice(1, 0, 2), b.slice(1, 0, 2)), erb = torch::max(a.slice(1, 2, 4), b.slice(1, 2, 4));
  const auto ewh = (erb - elt).clamp_min(0);
  const auto enclose = ewh.select(1, 0) * ewh.select(1, 1) + 1e-9;
  return inter / uni - (enclose - uni) / enclose;
}

struct Assignment {
  torch::Tensor cells;     // [K] long: assigned cells
  torch::Tensor boxes;     // [K, 4]: their labelled face
  torch::Tensor iou;       // [K]: IoU of the cell's current box with it (the class-score target)
  torch::Tensor negative;  // [P] bool: cells whose objectness learns "no face"
};

// SimOTA (YOLOX) on one image, from the current predictions (no gradients).
Assignment assign(const Priors& pr, const torch::Tensor& pred, const torch::Tensor& score, const Sample& s) {
  const int64_t P = pr.x.size(0);
  Assignment a;
  a.negative = torch::ones({P}, torch::kBool);
  if (!s.ignore.empty()) {
    const auto ig = boxes_tensor(s.ignore);
    const auto inside = (pr.x.unsqueeze(0) >= ig.select(1, 0).unsqueeze(1)) &
                        (pr.x.unsqueeze(0) <= ig.select(1, 2).unsqueeze(1)) &
                        (pr.y.unsqueeze(0) >= ig.select(1, 1).unsqueeze(1)) &
                        (pr.y.unsqueeze(0) <= ig.select(1, 3).unsqueeze(1));
    a.negative &= ~inside.any(0);
  }
  if (s.faces.empty()) {
    a.cells = torch::empty({0}, torch::kLong), a.boxes = torch::empty({0, 4}), a.iou = torch::empty({0});
    return a;
  }
  const auto gt = boxes_tensor(s.faces);  // [G, 4]
  const auto gx1 = gt.select(1, 0).unsqueeze(1), gy1 = gt.select(1, 1).unsqueeze(1);
  const auto gx2 = gt.select(1, 2).unsqueeze(1), gy2 = gt.select(1, 3).unsqueeze(1);
  const auto px = pr.x.unsqueeze(0), py = pr.y.unsqueeze(0), ps = pr.stride.unsqueeze(0);
  const auto in_box = (px > gx1) & (px < gx2) & (py > gy1) & (py < gy2);
  const auto in_ctr = ((px - (gx1 + gx2) / 2).abs() < 2.5 * ps) & ((py - (gy1 + gy2) / 2).abs() < 2.5 * ps);
  const auto valid = (in_box | in_ctr).any(0);  // [P]
  const auto vidx = valid.nonzero().squeeze(1);
  if (vidx.numel() == 0) {
    a.cells = torch::empty({0}, torch::kLong), a.boxes = torch::empty({0, 4}), a.iou = torch::empty({0});
    return a;
  }
  const auto ious = pairwise_iou(gt, pred.index_select(0, vidx));  // [G, V]
  const auto sc = score.index_select(0, vidx).clamp(1e-6, 1 - 1e-6).unsqueeze(0);
  const auto cls_cost = -(ious * sc.log() + (1 - ious) * (1 - sc).log());
  const auto both = (in_box & in_ctr).index_select(1, vidx);
  const auto cost = cls_cost + 3.0 * -(ious + 1e-8).log() + 1e5 * (~both).to(torch::kFloat32);

  const int64_t G = gt.size(0), V = vidx.size(0);
  const auto topk = std::get<0>(ious.topk(std::min<int64_t>(10, V), 1)).sum(1).to(torch::kLong).clamp_min(1);
  auto match = torch::zeros({G, V}, torch::kBool);
  for (int64_t g = 0; g < G; ++g) {
    const int64_t k = std::min<int64_t>(topk[g].item<int64_t>(), V);
    const auto idx = std::get<1>(cost[g].topk(k, 0, false));
    match[g].index_fill_(0, idx, true);
  }
  // A cell claimed by several faces keeps the cheapest.
  const auto masked_cost = torch::where(match, cost, torch::full_like(cost, 1e12));
  const auto best_g = masked_cost.argmin(0);                 // [V]
  const auto assigned = match.any(0);                        // [V]
  const auto cols = assigned.nonzero().squeeze(1);
  const auto g_of = best_g.index_select(0, cols);
  a.cells = vidx.index_select(0, cols);
  a.boxes = gt.index_select(0, g_of);
  a.iou = ious.index({g_of, cols});
  a.negative.index_fill_(0, a.cells, false);
  return a;
}

// The fine-tuned model's boxes drift a little from the base model's convention they were
// taught in: the correction to the annotators' boxes, fitted again on the training scenes as
// `eval --scenes --fit-boxes` fits it (faces at the product's operating point).
BoxCorrection refit_box_correction(const FaceTuneOptions& o, const std::vector<Scene>& scenes,
                                   const std::filesystem::path& tuned) {
  FaceDetectorOptions fo;
  fo.model = tuned;
  fo.detect_width = o.width;
  fo.box_correction = BoxCorrection{};  // the model's own boxes
  FaceDetector detector(fo);
  std::vector<GroundTruthBox> truth;
  std::vector<SceneFace> found;
  ProgressBar bar("refitting boxes", scenes.size(), "img");
  for (size_t i = 0; i < scenes.size(); ++i) {
    bar.advance(1);
    const int id = static_cast<int>(i);
    const cv::Mat img = load_image_or_throw(scenes[i].path);
    for (const auto& b : scenes[i].labelled) truth.push_back({id, b, 0});
    const double scale = detector.input_scale(img.size());
    for (const auto& f : detector.detect(img)) {
      SceneFace s;
      s.image = id;
      s.box = f.box;
      s.face_score = f.score;
      s.input_scale = scale;
      found.push_back(std::move(s));
    }
  }
  bar.finish();
  const BoxCorrection c = fit_box_correction(truth, found, fo.score_threshold);
  if (c.identity())
    spdlog::info("box correction: too few matched faces in {} scenes to refit it; the base model's stays",
                 scenes.size());
  else
    spdlog::info("box correction refitted on {} scenes: {}", scenes.size(), c.to_text());
  return c;
}

}  // namespace

FaceTuneReport tune_face_detector(const FaceTuneOptions& o) {
  if (!(o.operating_score > 0.05f && o.operating_score < 0.95f))
    throw Error(fmt::format("--operating-score {} must be between 0.05 and 0.95", o.operating_score));
  if (!(o.zoom.first > 0 && o.zoom.first <= o.zoom.second && o.zoom.second <= 2 * kStoreScale))
    throw Error(fmt::format("--zoom {} {}: need 0 < MIN <= MAX <= {}", o.zoom.first, o.zoom.second, 2 * kStoreScale));
  if (o.canvas % 32 || o.canvas <= 0) throw Error(fmt::format("--canvas {} must be a positive multiple of 32", o.canvas));
  check_output_path(o.out, "fine-tuned face model");
  const auto t0 = std::chrono::steady_clock::now();
  FaceTuneReport r;
  // The decoder's outputs, bar the landmarks (no labels for them: that head keeps its weights).
  const std::vector<std::string> outputs = {"cls_8", "cls_16", "cls_32", "obj_8", "obj_16", "obj_32",
                                            "bbox_8", "bbox_16", "bbox_32"};
  OnnxConvGraph net(o.base_model, outputs);
  if (o.freeze_backbone) spdlog::info("backbone frozen: {} weights", net.freeze_before("neck."));
  const BoxCorrection correction = box_correction_of(read_file_bytes(o.base_model, "face model"));
  const auto scenes = load_scenes(o, correction, r);
  spdlog::info("fine-tuning {} on {} scenes ({} faces), {} held out", o.base_model.filename().string(), r.scenes,
               r.faces, r.held_out);

  torch::manual_seed(o.seed);
  std::mt19937_64 rng(mix_seed(o.seed, 7, 0));
  const Priors pr = make_priors(o.canvas);
  torch::optim::Adam opt(net.trainable(), torch::optim::AdamOptions(o.lr));
  const int steps_per_epoch = (r.scenes + o.batch - 1) / o.batch, total = steps_per_epoch * o.epochs;
  const int warmup = std::min(100, total / 10);
  ProgressBar bar("face epochs", static_cast<size_t>(total), "step");
  std::vector<size_t> order(scenes.size());
  int step = 0;
  for (int e = 0; e < o.epochs; ++e) {
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    double epoch_loss = 0;
    for (int b = 0; b < steps_per_epoch; ++b, ++step) {
      const double lr = step < warmup ? o.lr * (step + 1) / warmup
                                      : o.lr * (0.05 + 0.95 * 0.5 * (1 + std::cos(M_PI * (step - warmup) / (total - warmup))));
      for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamOptions&>(g.options()).lr(lr);
      std::vector<Sample> batch;
      std::vector<torch::Tensor> inputs;
      for (int i = b * o.batch; i < std::min<int>(r.scenes, (b + 1) * o.batch); ++i) {
        batch.push_back(augment(scenes[order[static_cast<size_t>(i)]], o, rng));
        inputs.push_back(torch::from_blob(batch.back().canvas.data, {o.canvas, o.canvas, 3}, torch::kUInt8)
                             .permute({2, 0, 1})
                             .to(torch::kFloat32));
      }
      const auto x = torch::stack(inputs);
      const int64_t N = x.size(0);
      const auto outs = net.forward(x);
      const auto flat = [&](int first, int channels) {
        std::vector<torch::Tensor> parts;
        for (int k = 0; k < 3; ++k) parts.push_back(outs[static_cast<size_t>(first + k)].permute({0, 2, 3, 1}).reshape({N, -1, channels}));
        return torch::cat(parts, 1);
      };
      const auto cls = flat(0, 1).squeeze(2), obj = flat(3, 1).squeeze(2), box = flat(6, 4);  // [N,P], [N,P,4]
      const auto s = pr.stride.unsqueeze(0);
      const auto cx = (pr.x.unsqueeze(0) + box.select(2, 0) * s), cy = (pr.y.unsqueeze(0) + box.select(2, 1) * s);
      const auto w = box.select(2, 2).clamp(-8, 8).exp() * s, h = box.select(2, 3).clamp(-8, 8).exp() * s;
      const auto pred = torch::stack({cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2}, 2);  // [N,P,4]

      torch::Tensor obj_loss = torch::zeros({}), cls_loss = torch::zeros({}), box_loss = torch::zeros({});
      int64_t positives = 0;
      for (int64_t i = 0; i < N; ++i) {
        Assignment a;
        {
          torch::NoGradGuard no_grad;
          const auto score = (torch::sigmoid(cls[i]) * torch::sigmoid(obj[i])).sqrt();
          a = assign(pr, pred[i].detach(), score, batch[static_cast<size_t>(i)]);
        }
        auto target = torch::zeros_like(obj[i]);
        target.index_fill_(0, a.cells, 1.0);
        const auto counted = a.negative.clone().index_fill_(0, a.cells, true).to(torch::kFloat32);
        obj_loss = obj_loss + (torch::binary_cross_entropy_with_logits(obj[i], target, {}, {},
                                                                       at::Reduction::None) * counted).sum();
        if (a.cells.numel() == 0) continue;
        positives += a.cells.numel();
        cls_loss = cls_loss + torch::binary_cross_entropy_with_logits(cls[i].index_select(0, a.cells),
                                                                      o.iou_score_target ? a.iou : torch::ones_like(a.iou), {}, {},
                                                                      at::Reduction::Sum);
        box_loss = box_loss + (1 - giou(pred[i].index_select(0, a.cells), a.boxes)).sum();
      }
      const double norm = std::max<int64_t>(1, positives);
      const auto loss = (obj_loss + cls_loss + 5.0 * box_loss) / norm;
      opt.zero_grad();
      loss.backward();
      opt.step();
      const double l = loss.item<double>();
      if (!std::isfinite(l)) throw Error(fmt::format("face fine-tuning diverged at epoch {} (loss {})", e + 1, l));
      epoch_loss += l;
      bar.advance(1, fmt::format("epoch {}/{} loss {:.3f}", e + 1, o.epochs, epoch_loss / (b + 1)));
    }
    epoch_loss /= steps_per_epoch;
    if (e == 0) r.first_loss = epoch_loss;
    r.last_loss = epoch_loss;
  }
  bar.finish();
  const double exponent = std::log(FaceDetectorOptions{}.score_threshold) / std::log(o.operating_score);
  const auto save = [&](const std::filesystem::path& path, const BoxCorrection& c) {
    net.save_onnx(path, {{kBoxCorrectionMetadataKey, c.to_text()},
                         {kScoreExponentMetadataKey, fmt::format("{:.4f}", exponent)}});
  };
  r.correction = correction;
  if (o.refit_box_correction) {
    // The refit's detector reads the tuned model from a file: a scratch copy beside --out, so
    // --out is written once, with the correction it keeps (a stop during the refit leaves
    // whatever --out held before, not a tuned model with the base model's correction).
    const auto scratch = sibling_name(o.out, ".", ".refit");
    save(scratch, correction);
    const BoxCorrection refit = [&] {
      struct Remove {
        std::filesystem::path path;
        ~Remove() {
          std::error_code ec;
          std::filesystem::remove(path, ec);
        }
      } cleanup{scratch};
      return refit_box_correction(o, scenes, scratch);
    }();
    // Identity means too few matched faces to fit: the base correction stays, as the file says.
    if (!refit.identity()) r.correction = refit;
  }
  save(o.out, r.correction);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace maskwatch
