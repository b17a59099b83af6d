#include "eval/scene_eval.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <numeric>

#include "data/image_io.h"
#include "eval/plots.h"
#include "eval/voc.h"
#include "util/error.h"
#include "util/progress.h"
#include "vision/pipeline.h"
#include "vision/tracker.h"

namespace maskwatch {

std::string canonical_class_name(const std::string& name) {
  if (name == "mask_weared_incorrect" || name == "mask_worn_incorrect" || name == "with_incorrect_mask" ||
      name == "incorrect_mask")
    return "mask_worn_incorrectly";
  if (name == "mask" || name == "with_mask" || name == "face_mask") return "with_mask";
  if (name == "no_mask" || name == "without_mask" || name == "face" || name == "no-mask") return "without_mask";
  return name;
}

double all_point_ap(const std::vector<double>& recall, const std::vector<double>& precision) {
  std::vector<double> r = {0}, p = {0};
  r.insert(r.end(), recall.begin(), recall.end());
  p.insert(p.end(), precision.begin(), precision.end());
  r.push_back(1);
  p.push_back(0);
  for (size_t i = p.size() - 1; i > 0; --i) p[i - 1] = std::max(p[i - 1], p[i]);  // precision envelope
  double ap = 0;
  for (size_t i = 1; i < r.size(); ++i) ap += (r[i] - r[i - 1]) * p[i];
  return ap;
}

ApResult average_precision(const std::vector<GroundTruthBox>& truth, const std::vector<ScoredBox>& detections, int cls,
                           double iou_threshold, float min_face) {
  const auto small = [&](const cv::Rect2f& b) { return std::min(b.width, b.height) < min_face; };
  const auto counted = [&](const GroundTruthBox& g) {  // a positive of this class
    return !g.difficult && !small(g.box) && g.cls >= 0 && (cls < 0 || g.cls == cls);
  };
  const auto relevant = [&](const GroundTruthBox& g) {  // can be matched (counted or ignored)
    return cls < 0 || g.cls == cls || g.cls < 0 || g.difficult || small(g.box);
  };
  ApResult r;
  for (const auto& g : truth) r.positives += counted(g);
  std::vector<const ScoredBox*> dets;
  for (const auto& d : detections)
    if (cls < 0 || d.cls == cls) dets.push_back(&d);
  std::stable_sort(dets.begin(), dets.end(),
                   [](const ScoredBox* a, const ScoredBox* b) { return a->score > b->score; });
  std::vector<char> used(truth.size(), 0);
  for (const auto* d : dets) {
    // VOC: the best-overlapping box of this class decides; boxes to ignore only when no box
    // of the class overlaps enough.
    double best = 0, best_ignored = 0;
    int match = -1;
    for (size_t g = 0; g < truth.size(); ++g) {
      const auto& t = truth[g];
      if (t.image != d->image || !relevant(t)) continue;
      const double o = iou(t.box, d->box);
      if (counted(t)) {
        if (o > best) best = o, match = static_cast<int>(g);
      } else {
        best_ignored = std::max(best_ignored, o);
      }
    }
    if (match >= 0 && best >= iou_threshold) {
      if (used[static_cast<size_t>(match)]) {
        ++r.fp;  // a second detection of one face
      } else {
        used[static_cast<size_t>(match)] = 1;
        ++r.tp;
      }
    } else if (best_ignored >= iou_threshold || small(d->box)) {
      ++r.ignored;
      continue;
    } else {
      ++r.fp;
    }
    r.recall.push_back(r.positives ? static_cast<double>(r.tp) / r.positives : 0.0);
    r.precision.push_back(static_cast<double>(r.tp) / (r.tp + r.fp));
  }
  r.ap = r.positives ? all_point_ap(r.recall, r.precision) : 0.0;
  return r;
}

namespace {

std::filesystem::path image_for(const std::filesystem::path& dir, const VocAnnotation& a) {
  const auto images = dir / "images";
  if (!a.filename.empty() && std::filesystem::exists(images / a.filename)) return images / a.filename;
  for (const char* ext : {".png", ".jpg", ".jpeg", ".PNG", ".JPG", ".JPEG"}) {
    const auto p = images / (a.xml.stem().string() + ext);
    if (std::filesystem::exists(p)) return p;
  }
  return {};
}

// Model class probabilities -> evaluated class probabilities: a model class that is not
// evaluated and does not mean "mask" adds to without_mask (a mask worn under the nose is
// not a mask worn), if that is evaluated.
std::vector<float> evaluated_probs(const std::vector<float>& probs, const std::vector<int>& model_to_eval,
                                   int fold_into) {
  std::vector<float> out(static_cast<size_t>(*std::max_element(model_to_eval.begin(), model_to_eval.end()) + 1), 0.0f);
  for (size_t m = 0; m < probs.size(); ++m) {
    const int e = model_to_eval[m] >= 0 ? model_to_eval[m] : fold_into;
    if (e >= 0 && static_cast<size_t>(e) < out.size()) out[static_cast<size_t>(e)] += probs[m];
  }
  return out;
}

}  // namespace

nlohmann::json evaluate_scenes(const std::filesystem::path& dir, Pipeline& pipeline,
                               const std::vector<std::string>& model_classes, const SceneEvalOptions& o,
                               const std::filesystem::path& plot_dir) {
  std::vector<std::string> classes = o.classes;
  if (classes.empty()) classes = {"with_mask", "without_mask"};
  std::vector<int> model_to_eval;
  for (const auto& m : model_classes) {
    const auto it = std::find(classes.begin(), classes.end(), m);
    model_to_eval.push_back(it == classes.end() ? -1 : static_cast<int>(it - classes.begin()));
  }
  for (size_t c = 0; c < classes.size(); ++c)
    if (std::find(model_classes.begin(), model_classes.end(), classes[c]) == model_classes.end())
      throw Error(fmt::format("--classes {}: the model has no such class (it has {})", classes[c],
                              fmt::join(model_classes, ", ")));
  const auto without = std::find(classes.begin(), classes.end(), "without_mask");
  const int fold_into = without == classes.end() ? -1 : static_cast<int>(without - classes.begin());

  const auto ann_dir = dir / "annotations";
  std::error_code ec;
  if (!std::filesystem::is_directory(ann_dir, ec))
    throw Error(
        fmt::format("{}: no annotations/ folder (expected Pascal VOC: images/ and annotations/*.xml)", dir.string()));
  std::vector<std::filesystem::path> xmls;
  for (const auto& e : std::filesystem::directory_iterator(ann_dir, ec))
    if (e.path().extension() == ".xml") xmls.push_back(e.path());
  std::sort(xmls.begin(), xmls.end());
  if (xmls.empty()) throw Error(fmt::format("{}: no .xml annotation files", ann_dir.string()));

  std::vector<GroundTruthBox> truth;
  std::vector<ScoredBox> class_dets, top_dets, face_dets;
  std::map<std::string, int> gt_counts;
  int images = 0, missing_images = 0, unreadable = 0;
  ProgressBar bar("scenes", xmls.size(), "img");
  for (const auto& xml : xmls) {
    bar.advance(1);
    const auto a = parse_voc(xml);
    const auto path = image_for(dir, a);
    if (path.empty()) {
      spdlog::warn("{}: image '{}' not found in {}", xml.string(), a.filename, (dir / "images").string());
      ++missing_images;
      continue;
    }
    std::string why;
    const cv::Mat img = load_image(path, &why);
    if (img.empty()) {
      spdlog::warn("skipping {}: {}", path.string(), why);
      ++unreadable;
      continue;
    }
    if (img.cols != a.width || img.rows != a.height)
      throw Error(fmt::format("{}: says the image is {}x{}, but {} is {}x{}", xml.string(), a.width, a.height,
                              path.string(), img.cols, img.rows));
    const int id = images++;
    for (const auto& obj : a.objects) {
      const std::string name = canonical_class_name(obj.name);
      const auto it = std::find(classes.begin(), classes.end(), name);
      truth.push_back({id, obj.box, it == classes.end() ? -1 : static_cast<int>(it - classes.begin()), obj.difficult});
      ++gt_counts[name];
    }
    for (const auto& f : pipeline.classify_still(img)) {
      const auto p = evaluated_probs(f.raw, model_to_eval, fold_into);
      for (size_t c = 0; c < p.size(); ++c)
        class_dets.push_back({id, f.box, static_cast<double>(f.face_score) * p[c], static_cast<int>(c)});
      const int top = static_cast<int>(std::max_element(p.begin(), p.end()) - p.begin());
      top_dets.push_back({id, f.box, f.face_score, top});
      face_dets.push_back({id, f.box, f.face_score, -1});
    }
  }
  bar.finish();
  if (!images) throw Error(fmt::format("{}: no annotated image could be read", dir.string()));

  nlohmann::json per_class = nlohmann::json::object();
  std::vector<XySeries> curves;
  const std::vector<cv::Scalar> colours = {{60, 160, 40}, {50, 50, 210}, {20, 150, 230}, {150, 80, 160}};
  double map_sum = 0;
  for (size_t c = 0; c < classes.size(); ++c) {
    const auto ap = average_precision(truth, class_dets, static_cast<int>(c), o.iou, o.min_face);
    const auto op = average_precision(truth, top_dets, static_cast<int>(c), o.iou, o.min_face);
    map_sum += ap.ap;
    per_class[classes[c]] = {{"ap", ap.ap},
                             {"positives", ap.positives},
                             {"operating_point",
                              {{"tp", op.tp},
                               {"fp", op.fp},
                               {"ignored", op.ignored},
                               {"precision", op.tp + op.fp ? static_cast<double>(op.tp) / (op.tp + op.fp) : 0.0},
                               {"recall", op.positives ? static_cast<double>(op.tp) / op.positives : 0.0}}}};
    curves.push_back({fmt::format("{} AP {:.3f}", classes[c], ap.ap), ap.recall, ap.precision,
                      colours[c % colours.size()], false, true});
  }
  const auto face = average_precision(truth, face_dets, -1, o.iou, o.min_face);
  curves.push_back(
      {fmt::format("any face AP {:.3f}", face.ap), face.recall, face.precision, cv::Scalar(90, 90, 90), false, true});
  const double map = map_sum / static_cast<double>(classes.size());
  nlohmann::json report = {
      {"images", images},          {"missing_images", missing_images}, {"unreadable_images", unreadable},
      {"classes", classes},        {"ground_truth_boxes", gt_counts},  {"iou_threshold", o.iou},
      {"min_face_px", o.min_face}, {"per_class", per_class},           {"map", map},
      {"face_ap", face.ap},        {"face_positives", face.positives}, {"detections", face_dets.size()}};
  if (!plot_dir.empty())
    save_png(plot_dir / "pr_curves.png", draw_xy_chart(fmt::format("{} scenes: mAP@0.5 {:.3f}", images, map), "recall",
                                                       "precision", curves, false, false));
  return report;
}

}  // namespace maskwatch
