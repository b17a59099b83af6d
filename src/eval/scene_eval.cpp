#include "eval/scene_eval.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <opencv2/imgproc.hpp>

#include "media/image_io.h"
#include "eval/class_fold.h"
#include "eval/plots.h"
#include "eval/voc.h"
#include "media/save_png.h"
#include "util/error.h"
#include "util/progress.h"
#include "vision/box_iou.h"
#include "vision/pipeline.h"

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
  const auto ignore_region = [&](const GroundTruthBox& g) {
    return g.difficult || g.cls < 0 || std::min(g.box.width, g.box.height) < min_face;
  };
  const auto counted = [&](const GroundTruthBox& g) { return !ignore_region(g) && (cls < 0 || g.cls == cls); };
  ApResult r;
  r.truth_found.assign(truth.size(), 0);
  std::map<int, std::vector<size_t>> by_image;  // boxes a detection can take: its class's and ignore regions
  for (size_t g = 0; g < truth.size(); ++g) {
    r.positives += counted(truth[g]);
    if (counted(truth[g]) || ignore_region(truth[g])) by_image[truth[g].image].push_back(g);
  }
  std::vector<size_t> order;
  for (size_t i = 0; i < detections.size(); ++i)
    if (cls < 0 || detections[i].cls == cls) order.push_back(i);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return detections[a].score > detections[b].score; });
  for (const size_t i : order) {
    const auto& d = detections[i];
    double best = 0;
    long match = -1;
    if (const auto it = by_image.find(d.image); it != by_image.end())
      for (const size_t g : it->second)
        if (const double o = iou(truth[g].box, d.box); o > best) best = o, match = static_cast<long>(g);
    if (match >= 0 && best >= iou_threshold && ignore_region(truth[static_cast<size_t>(match)])) {
      ++r.ignored;
      continue;
    }
    if (match >= 0 && best >= iou_threshold && !r.truth_found[static_cast<size_t>(match)]) {
      r.truth_found[static_cast<size_t>(match)] = 1;
      ++r.tp;
    } else {
      ++r.fp;  // nothing there, the wrong label, or a second detection of one face
      r.false_positives.push_back(i);
    }
    r.recall.push_back(r.positives ? static_cast<double>(r.tp) / r.positives : 0.0);
    r.precision.push_back(static_cast<double>(r.tp) / (r.tp + r.fp));
  }
  r.ap = r.positives ? all_point_ap(r.recall, r.precision) : 0.0;
  return r;
}

std::vector<ScoredBox> shown_label_detections(const std::vector<SceneFace>& faces) {
  std::vector<ScoredBox> out;
  for (const auto& f : faces)
    if (f.label >= 0) out.push_back({f.image, f.box, static_cast<double>(f.face_score) * f.label_prob, f.label});
  return out;
}

std::vector<ScoredBox> per_class_score_detections(const std::vector<SceneFace>& faces, int classes) {
  std::vector<ScoredBox> out;
  for (const auto& f : faces)
    for (int c = 0; c < classes && c < static_cast<int>(f.probs.size()); ++c)
      out.push_back({f.image, f.box, static_cast<double>(f.face_score) * f.probs[static_cast<size_t>(c)], c});
  return out;
}

std::vector<ScoredBox> face_detections(const std::vector<SceneFace>& faces) {
  std::vector<ScoredBox> out;
  for (const auto& f : faces) out.push_back({f.image, f.box, f.face_score, -1});
  return out;
}

BoxCorrection fit_box_correction(const std::vector<GroundTruthBox>& truth, const std::vector<SceneFace>& faces,
                                 float min_score, float min_face, int* pairs) {
  std::map<int, std::vector<const GroundTruthBox*>> by_image;
  for (const auto& g : truth)
    if (std::min(g.box.width, g.box.height) >= min_face) by_image[g.image].push_back(&g);
  std::vector<double> l;
  std::vector<double> t[4];  // dx, dy, log width ratio, log height ratio
  for (const auto& f : faces) {
    if (f.face_score < min_score || f.box.width <= 0 || f.box.height <= 0) continue;
    const GroundTruthBox* best = nullptr;
    double best_iou = 0.3;
    for (const auto* g : by_image[f.image])
      if (const double o = iou(g->box, f.box); o >= best_iou) best_iou = o, best = g;
    if (!best) continue;
    const auto& b = f.box;
    const auto& g = best->box;
    const auto clip = [](double v) { return std::clamp(v, -1.0, 1.0); };
    l.push_back(std::log2(std::max(1.0, b.width * f.input_scale) / 32.0));
    t[0].push_back(clip((g.x + g.width / 2 - (b.x + b.width / 2)) / b.width));
    t[1].push_back(clip((g.y + g.height / 2 - (b.y + b.height / 2)) / b.height));
    t[2].push_back(clip(std::log(g.width / b.width)));
    t[3].push_back(clip(std::log(g.height / b.height)));
  }
  BoxCorrection c;
  if (pairs) *pairs = static_cast<int>(l.size());
  if (l.size() < static_cast<size_t>(kMinBoxFitPairs)) return c;
  const double n = static_cast<double>(l.size());
  const double ml = std::accumulate(l.begin(), l.end(), 0.0) / n;
  double vl = 0;
  for (double v : l) vl += (v - ml) * (v - ml);
  float* out[4] = {c.dx, c.dy, c.lw, c.lh};
  for (int k = 0; k < 4; ++k) {
    const double mt = std::accumulate(t[k].begin(), t[k].end(), 0.0) / n;
    double cov = 0;
    for (size_t i = 0; i < l.size(); ++i) cov += (l[i] - ml) * (t[k][i] - mt);
    const double slope = vl > 0 ? cov / vl : 0.0;
    out[k][0] = static_cast<float>(mt - slope * ml);
    out[k][1] = static_cast<float>(slope);
  }
  return c;
}

namespace {

// Keeps the boxes and faces of the images in `keep` (all when null).
template <typename T>
std::vector<T> of_images(const std::vector<T>& v, const std::set<int>* keep) {
  if (!keep) return v;
  std::vector<T> out;
  for (const auto& x : v)
    if (keep->count(x.image)) out.push_back(x);
  return out;
}

double ratio(int a, int b) { return b ? static_cast<double>(a) / b : 0.0; }

// What the product shows on the faces labelled as masks worn incorrectly (at least min_face,
// not difficult): found = a shown detection overlaps it with IoU >= o.iou (the best one is
// its verdict); with_mask = that verdict is the with_mask class, which a compliance monitor
// must not say.
nlohmann::json worn_incorrectly_verdicts(const std::vector<GroundTruthBox>& truth, const std::vector<SceneFace>& faces,
                                         int with_mask, const SceneEvalOptions& o) {
  int boxes = 0, found = 0, shown_with = 0;
  for (const auto& g : truth) {
    if (!g.worn_incorrectly || g.difficult || std::min(g.box.width, g.box.height) < o.min_face) continue;
    ++boxes;
    const SceneFace* best = nullptr;
    double best_iou = o.iou;
    for (const auto& f : faces) {
      if (f.image != g.image) continue;
      const double overlap = iou(f.box, g.box);
      if (overlap >= best_iou) best = &f, best_iou = overlap;
    }
    if (!best) continue;
    ++found;
    shown_with += with_mask >= 0 && best->label == with_mask;
  }
  return {{"boxes", boxes},
          {"found", found},
          {"shown_with_mask", shown_with},
          {"not_with_mask_share", found ? 1.0 - ratio(shown_with, found) : 0.0}};
}

// The metrics of one set of images: headline mAP and per class, the per-class-score variant,
// face AP, and the operating point (every detection the product shows).
nlohmann::json score_scenes(const std::vector<GroundTruthBox>& all_truth, const std::vector<SceneFace>& all_faces,
                            const std::vector<std::string>& classes, const SceneEvalOptions& o,
                            const std::set<int>* images, std::vector<XySeries>* curves = nullptr) {
  const auto truth = of_images(all_truth, images);
  const auto faces = of_images(all_faces, images);
  const auto shown = shown_label_detections(faces);
  const auto kind = per_class_score_detections(faces, static_cast<int>(classes.size()));
  const std::vector<cv::Scalar> colours = {{60, 160, 40}, {50, 50, 210}, {20, 150, 230}, {150, 80, 160}};
  nlohmann::json per_class = nlohmann::json::object();
  // mAP is the mean over the classes that have labelled faces here (as VOC's devkit does): a
  // class with none has no AP, and counting it as 0 would halve the score of a set of scenes
  // that holds masked faces only.
  double map = 0, kind_map = 0;
  int scored = 0;
  for (size_t c = 0; c < classes.size(); ++c) {
    const auto ap = average_precision(truth, shown, static_cast<int>(c), o.iou, o.min_face);
    const auto kind_ap = average_precision(truth, kind, static_cast<int>(c), o.iou, o.min_face);
    if (ap.positives > 0) {
      map += ap.ap;
      kind_map += kind_ap.ap;
      ++scored;
    }
    per_class[classes[c]] = {{"ap", ap.ap},
                             {"per_class_score_ap", kind_ap.ap},
                             {"positives", ap.positives},
                             {"operating_point",
                              {{"tp", ap.tp},
                               {"fp", ap.fp},
                               {"ignored", ap.ignored},
                               {"precision", ratio(ap.tp, ap.tp + ap.fp)},
                               {"recall", ratio(ap.tp, ap.positives)}}}};
    if (curves)
      curves->push_back({fmt::format("{} AP {:.3f}", classes[c], ap.ap), ap.recall, ap.precision,
                         colours[c % colours.size()], false, true});
  }
  if (scored > 0) {
    map /= scored;
    kind_map /= scored;
  }
  const auto face = average_precision(truth, face_detections(faces), -1, o.iou, o.min_face);
  if (curves)
    curves->push_back(
        {fmt::format("any face AP {:.3f}", face.ap), face.recall, face.precision, cv::Scalar(90, 90, 90), false, true});
  const auto with = std::find(classes.begin(), classes.end(), "with_mask");
  nlohmann::json scores = {
      {"worn_incorrectly", worn_incorrectly_verdicts(
                               truth, faces, with == classes.end() ? -1 : static_cast<int>(with - classes.begin()), o)},
      {"map", map},
      {"per_class_score_map", kind_map},
      {"map_classes", scored},  // classes with labelled faces, the ones mAP averages
      {"per_class", per_class},
      {"face_ap", face.ap},
      {"face_positives", face.positives},
      {"face_recall", ratio(face.tp, face.positives)},
      {"face_precision", ratio(face.tp, face.tp + face.fp)},
      {"detections", faces.size()}};
  if (images) scores["images"] = images->size();  // all scenes: the caller counts those it read
  return scores;
}

// A square around `box` (1.5x its side) from the image, `side` px.
cv::Mat face_tile(const cv::Mat& img, const cv::Rect2f& box) {
  const float side = std::max(box.width, box.height) * 1.5f;
  const cv::Rect want(cvRound(box.x + box.width / 2 - side / 2), cvRound(box.y + box.height / 2 - side / 2),
                      std::max(1, cvRound(side)), std::max(1, cvRound(side)));
  cv::Mat tile(want.size(), img.type(), cv::Scalar::all(40));
  const cv::Rect have = want & cv::Rect(0, 0, img.cols, img.rows);
  if (have.area() > 0) img(have).copyTo(tile(have - want.tl()));
  const cv::Rect2f inner(box.x - static_cast<float>(want.x), box.y - static_cast<float>(want.y), box.width, box.height);
  cv::rectangle(tile, inner, cv::Scalar(0, 220, 255), std::max(1, cvRound(side / 80)));
  return tile;
}

struct Tile {
  int image;
  cv::Rect2f box;
  std::string caption;
};

// Montage of up to `limit` tiles (in the order given), reading each image once.
cv::Mat contact_sheet(const std::vector<std::filesystem::path>& paths, std::vector<Tile> tiles, size_t limit) {
  if (tiles.size() > limit) tiles.resize(limit);
  std::vector<cv::Mat> images;
  std::vector<std::string> captions;
  std::map<int, cv::Mat> cache;
  for (const auto& t : tiles) {
    auto& img = cache[t.image];
    if (img.empty()) img = load_image(paths[static_cast<size_t>(t.image)]);
    if (img.empty()) continue;
    images.push_back(face_tile(img, t.box));
    captions.push_back(t.caption);
  }
  return images.empty() ? cv::Mat() : draw_montage(images, captions);
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
  // A model class that is not evaluated and does not mean "mask" adds to without_mask (a mask
  // worn under the nose is not a mask worn), if that is evaluated.
  const auto without = std::find(classes.begin(), classes.end(), "without_mask");
  const int fold_into = without == classes.end() ? -1 : static_cast<int>(without - classes.begin());
  for (auto& e : model_to_eval)
    if (e < 0) e = fold_into;

  const auto xmls = voc_annotation_files(dir);
  // --map names labels as the annotations do (any spelling canonical_class_name knows); one
  // that no box carries would change nothing without a word, so it is refused before the work.
  std::map<std::string, std::string> class_map;
  for (const auto& [from, to] : o.class_map) {
    if (std::find(classes.begin(), classes.end(), to) == classes.end())
      throw Error(fmt::format("--map {}={}: '{}' is not a class evaluated here ({})", from, to, to,
                              fmt::join(classes, ", ")));
    const auto [at, added] = class_map.emplace(canonical_class_name(from), to);
    if (!added && at->second != to)
      throw Error(fmt::format("--map {}={}: '{}' is the label {} is mapped to '{}' already", from, to, from, at->first,
                              at->second));
  }
  if (!class_map.empty()) {
    std::set<std::string> labels;
    for (const auto& xml : xmls)
      for (const auto& obj : parse_voc(xml).objects) labels.insert(canonical_class_name(obj.name));
    for (const auto& [from, to] : o.class_map)
      if (!labels.count(canonical_class_name(from)))
        throw Error(fmt::format("--map {}={}: no box in {} is labelled '{}' (labels: {})", from, to, dir.string(), from,
                                fmt::join(labels, ", ")));
  }

  std::vector<GroundTruthBox> truth;
  std::vector<SceneFace> faces;
  std::vector<std::filesystem::path> paths;
  std::set<int> subset_ids, even_ids, odd_ids;
  std::map<std::string, int> gt_counts;
  int missing_images = 0, unreadable = 0;
  ProgressBar bar("scenes", xmls.size(), "img");
  for (const auto& xml : xmls) {
    bar.advance(1);
    const auto a = parse_voc(xml);
    const auto path = voc_image_path(dir, a);
    if (path.empty()) {
      spdlog::warn("{}: image '{}' not found in {}", xml.string(), a.filename, (dir / "images").string());
      ++missing_images;
      continue;
    }
    std::string why, damage;
    const cv::Mat img = load_image(path, &why, &damage);
    if (img.empty()) {
      spdlog::warn("skipping {}: {}", path.string(), why);
      ++unreadable;
      continue;
    }
    if (!damage.empty()) spdlog::warn("{}: {} (scored as it decodes)", path.string(), damage);
    check_voc_image_size(a, path, img.size());
    const int id = static_cast<int>(paths.size());
    paths.push_back(path);
    (id % 2 ? odd_ids : even_ids).insert(id);
    if (o.subset.count(path.filename().string())) subset_ids.insert(id);
    for (const auto& obj : a.objects) {
      const std::string labelled = canonical_class_name(obj.name);
      const auto m = class_map.find(labelled);
      const std::string name = m == class_map.end() ? labelled : m->second;
      const auto it = std::find(classes.begin(), classes.end(), name);
      truth.push_back({id, obj.box, it == classes.end() ? -1 : static_cast<int>(it - classes.begin()), obj.difficult,
                       labelled == "mask_worn_incorrectly"});
      ++gt_counts[labelled];
    }
    const double scale = pipeline.detector().input_scale(img.size());
    for (const auto& f : pipeline.classify_still(img)) {
      SceneFace s{id, f.box, f.face_score, -1, 0, fold_probs(f.raw, model_to_eval, classes.size()), scale};
      // The label the overlay shows: the model's top class, folded as its probability is.
      const size_t top = static_cast<size_t>(std::max_element(f.raw.begin(), f.raw.end()) - f.raw.begin());
      if (top < f.raw.size()) s.label = model_to_eval[top];
      if (s.label >= 0) s.label_prob = f.raw[top];
      faces.push_back(std::move(s));
    }
  }
  bar.finish();
  if (paths.empty()) throw Error(fmt::format("{}: no annotated image could be read", dir.string()));

  std::vector<XySeries> curves;
  nlohmann::json report = score_scenes(truth, faces, classes, o, nullptr, &curves);
  report["images"] = paths.size();  // every scene read, those without labelled faces too
  report.update({{"missing_images", missing_images},
                 {"unreadable_images", unreadable},
                 {"classes", classes},
                 {"ground_truth_boxes", gt_counts},
                 {"iou_threshold", o.iou},
                 {"min_face_px", o.min_face},
                 {"protocol",
                  "one detection per face with the label shown (argmax), score = face score x its probability; "
                  "every unmatched detection is a false positive; faces under min_face px, difficult and "
                  "not-evaluated boxes are ignore regions"}});
  if (!o.subset_name.empty()) {
    report["subset"] = score_scenes(truth, faces, classes, o, &subset_ids);
    report["subset"]["name"] = o.subset_name;
  }
  if (o.fit_boxes) {
    // Fitted on the even-numbered images, scored on the odd ones with and without it.
    int pairs = 0;
    const auto correction = fit_box_correction(of_images(truth, &even_ids), of_images(faces, &even_ids),
                                               o.fit_min_score, o.min_face, &pairs);
    auto corrected = faces;
    for (auto& f : corrected) f.box = correction.apply(f.box, f.input_scale);
    const auto terms = [](const float(&c)[2]) { return nlohmann::json::array({c[0], c[1]}); };
    report["box_fit"] = {{"correction",
                          {{"dx", terms(correction.dx)},
                           {"dy", terms(correction.dy)},
                           {"lw", terms(correction.lw)},
                           {"lh", terms(correction.lh)}}},
                         {"fitted_on_images", even_ids.size()},
                         {"fitted_on_faces", pairs},  // none fitted (identity) under kMinBoxFitPairs
                         {"held_out_without", score_scenes(truth, faces, classes, o, &odd_ids)},
                         {"held_out_with", score_scenes(truth, corrected, classes, o, &odd_ids)}};
  }
  if (!plot_dir.empty()) {
    save_png(plot_dir / kPrCurvesSheet, draw_xy_chart(fmt::format("{} scenes: mAP@0.5 {:.3f} (one label per face)",
                                                                   paths.size(), report["map"].get<double>()),
                                                       "recall", "precision", curves, false, false));
    // Contact sheets: labelled faces no detection found (largest first) and detections that
    // match no face (highest score first).
    const auto face = average_precision(truth, face_detections(faces), -1, o.iou, o.min_face);
    std::vector<Tile> missed, false_faces;
    for (size_t g = 0; g < truth.size(); ++g) {
      const auto& t = truth[g];
      if (face.truth_found[g] || t.cls < 0 || t.difficult || std::min(t.box.width, t.box.height) < o.min_face) continue;
      missed.push_back(
          {t.image, t.box,
           fmt::format("{} {:.0f}px", classes[static_cast<size_t>(t.cls)], std::min(t.box.width, t.box.height))});
    }
    std::stable_sort(missed.begin(), missed.end(),
                     [](const Tile& a, const Tile& b) { return a.box.area() > b.box.area(); });
    const auto dets = face_detections(faces);
    for (const size_t i : face.false_positives)
      false_faces.push_back({dets[i].image, dets[i].box, fmt::format("score {:.2f}", dets[i].score)});
    for (const auto& [name, tiles] : {std::pair{kMissedFacesSheet, &missed}, {kFalseFacesSheet, &false_faces}}) {
      const cv::Mat sheet = contact_sheet(paths, *tiles, 96);
      save_png_or_remove(plot_dir / name, sheet);
    }
    report["missed_faces"] = missed.size();
    report["false_faces"] = false_faces.size();
  }
  return report;
}

}  // namespace maskwatch
