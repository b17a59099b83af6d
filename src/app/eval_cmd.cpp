// `maskwatch eval`: accuracy of an exported model on labelled folders (optionally only one
// split of a training run), through the same classifier as `run` (XNNPACK by default) and
// the same face crops the detector uses; overall and per source, with calibration error.
// `--conditions` does the same for the crops rendered under named camera conditions
// (eval/conditions.h). `--scenes` evaluates detection + classification end to end on
// annotated scenes (eval/scene_eval.h).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "app/cli.h"
#include "app/commands.h"
#include "app/vision_options.h"
#include "data/dataset.h"
#include "data/split_file.h"
#include "eval/calibration.h"
#include "eval/class_fold.h"
#include "eval/condition_eval.h"
#include "eval/conditions.h"
#include "eval/metrics.h"
#include "eval/plots.h"
#include "eval/scene_eval.h"
#include "eval/voc.h"
#include "media/image_io.h"
#include "util/error.h"
#include "util/files.h"
#include "util/json_io.h"
#include "util/paths.h"
#include "util/progress.h"
#include "util/seed.h"
#include "util/threads.h"
#include "vision/face_detector.h"
#include "vision/mask_classifier.h"
#include "vision/pipeline.h"

namespace maskwatch::app {
namespace {

// The sheets --out gets from crops (the scene ones are scene_eval's).
constexpr const char* kConfusionSheet = "confusion.png";
constexpr const char* kErrorsSheet = "errors.png";
constexpr const char* kReliabilitySheet = "reliability.png";
constexpr const char* kConditionsSheet = "conditions.png";
constexpr const char* kRiskCoverageSheet = "risk_coverage.png";

struct EvalOpts {
  std::string model = default_classifier_path().string(), json_out, split, subset = "test", out, scenes, exclude;
  bool conditions = false, fit_gate = false, no_gate = false;
  double gate_target = GateFitOptions{}.target;
  std::vector<std::string> data, maps, classes;
  float face_threshold = FaceDetectorOptions{}.score_threshold;
  float face_nms = FaceDetectorOptions{}.nms_threshold;
  bool no_face_crops = false;
  std::string face_model;
  int detect_width = FaceDetectorOptions{}.detect_width;
  bool fit_boxes = false;
  bool no_close_up_retry = false;
  bool single_look = false;
  std::string half;  // with --scenes: "odd" or "even" scenes reported on their own
  int batch = 16, threads = 0;
};

// Keeps only the items of one split of a training run.
void keep_split(Dataset& ds, const EvalOpts& o) {
  const Split which = o.subset == "train" ? Split::Train : o.subset == "val" ? Split::Val : Split::Test;
  const auto members = split_members(read_json(o.split, "split file"), which, o.split);
  const std::set<std::string> keep(members.begin(), members.end());
  std::vector<DatasetItem> items;
  for (auto& it : ds.items)
    if (keep.count(it.rel)) items.push_back(it);
  if (items.empty())
    throw Error(fmt::format("none of the {} split's images are in the data folders given (names like '{}')", o.subset,
                            members.empty() ? std::string("?") : members.front()));
  // A gate fitted on part of the validation split would replace the model's own without a word
  // of what it lacks: every data folder the split names must be there (the shipped split without
  // real-masks-incorrect keeps 96.5 % of its images, and no chin mask), and nearly every image.
  if (o.fit_gate) {
    const auto folder = [](const std::string& rel) { return rel.substr(0, rel.find('/')); };
    std::set<std::string> named, given;
    for (const auto& m : members) named.insert(folder(m));
    for (const auto& it : items) given.insert(folder(it.rel));
    for (const auto& f : named)
      if (!given.count(f))
        throw Error(fmt::format("--fit-gate: none of the {} images of {} from the data folder '{}' are evaluated: give "
                                "--data for every folder the split was made from (a gate fitted without them would "
                                "replace the model's)",
                                o.subset, o.split, f));
    if (items.size() < keep.size() * 0.95)
      throw Error(fmt::format("--fit-gate: only {} of the {} {} images of {} are evaluated (the others excluded or not "
                              "in the data folders given); a gate fitted on part of them would replace the model's",
                              items.size(), keep.size(), o.subset, o.split));
  }
  if (items.size() < keep.size())  // a score over part of a split must not pass for the whole
    spdlog::warn("{} of the {} {} images of {} are not evaluated (excluded, or not in the data folders given)",
                 keep.size() - items.size(), keep.size(), o.subset, o.split);
  ds.items = std::move(items);
}

// The report and the sheets must not replace what the command reads: the models, the split, the
// exclusions, the face model, the images and annotations (nor be written into their folders, where
// the next run would read a sheet as a labelled photo), nor one another.
void refuse_outputs_over_inputs(const EvalOpts& o) {
  std::vector<std::string> read_folders = o.data;
  if (!o.scenes.empty())  // what a VOC folder's reader reads; a report beside them is fine
    for (const char* sub : {"images", "annotations"}) read_folders.push_back((std::filesystem::path(o.scenes) / sub).string());
  if (!o.json_out.empty()) {
    auto inputs = model_files(o.model);
    inputs.push_back(resolve_face_model(o.face_model));
    if (!o.split.empty()) inputs.emplace_back(o.split);
    if (!o.exclude.empty()) inputs.emplace_back(o.exclude);
    InputFiles(inputs).refuse_overwriting(o.json_out, "JSON file");
    // A report beside the data is harmless; one over an image or annotation, or named as one, is not.
    std::error_code ec;
    const std::filesystem::path json(o.json_out);
    if (std::filesystem::exists(json, ec) || is_image_file(json) || json.extension() == ".xml")
      for (const auto& d : read_folders)
        refuse_output_inside(o.json_out, d, "--json", "it is, or would be read as, an image or annotation");
  }
  if (o.out.empty()) return;
  // Its sheets are PNGs, and a folder in a data folder is read as a class.
  for (const auto& d : read_folders)
    refuse_output_inside(o.out, d, "--out", "the next evaluation would read its sheets as labelled images");
  std::vector<std::pair<std::filesystem::path, std::string>> outputs = {{o.json_out, "JSON file"}};
  for (const char* sheet : {kConfusionSheet, kErrorsSheet, kReliabilitySheet, kConditionsSheet, kRiskCoverageSheet,
                            kPrCurvesSheet, kMissedFacesSheet, kFalseFacesSheet})
    outputs.emplace_back(std::filesystem::path(o.out) / sheet, fmt::format("--out sheet {}", sheet));
  refuse_same_output(outputs);
}

void print_report(const ClassificationReport& r) {
  fmt::print("{} images: accuracy {:.2f}%, balanced accuracy {:.2f}%\n", r.n, 100 * r.accuracy,
             100 * r.balanced_accuracy);
  // A rate with nothing to count (no image of the class, no answer of it) is n/a, not 0 %.
  const auto percent = [](double v, bool defined) { return defined ? fmt::format("{:6.2f}%", 100 * v) : "   n/a "; };
  for (size_t c = 0; c < r.classes.size(); ++c) {
    int answered = 0;
    for (const auto& row : r.confusion) answered += row[c];
    const ClassMetrics& m = r.per_class[c];
    fmt::print("  {:<22} precision {}  recall {}  f1 {}  n {}\n", r.classes[c], percent(m.precision, answered > 0),
               percent(m.recall, m.n > 0), m.n > 0 ? fmt::format("{:.4f}", m.f1) : "n/a", m.n);
  }
}

// The labelled items to evaluate: the data folders (classes in the model's order, less those
// `--map` folds away), only the chosen subset when a split file is given.
Dataset evaluation_dataset(const EvalOpts& o, const ClassFold& fold) {
  ScanOptions so;
  so.classes = fold.classes;
  so.min_classes = 1;
  so.class_map = parse_class_mappings(o.maps);
  if (!o.exclude.empty()) {
    if (!std::filesystem::exists(o.exclude)) throw Error("exclude file not found: " + o.exclude);
    so.exclude_file = o.exclude;
  }
  std::vector<std::filesystem::path> dirs(o.data.begin(), o.data.end());
  Dataset ds = scan_datasets(dirs, so);
  if (!o.split.empty()) keep_split(ds, o);
  return ds;
}

// Decodes the classifier's crops of `ds` in chunks, handing each chunk's items and crops to
// use(items, crops): the face crops of a whole data set need not sit in memory at once. Images
// that fail to decode are skipped (and counted), the rest of their chunk is evaluated.
template <class Use>
void for_each_loaded_chunk(const Dataset& ds, const EvalOpts& o, const MaskClassifier& clf, ProgressBar& bar,
                           std::vector<SkippedImage>& skipped, Use use) {
  LoadOptions lo;
  lo.size = clf.input_size();
  lo.face_crops = !o.no_face_crops;
  lo.crop.detector.model = o.face_model;
  lo.show_progress = false;
  lo.require_every_class = false;  // a chunk may hold a class's few images only, all broken
  constexpr size_t kChunk = 256;
  for (size_t start = 0; start < ds.items.size(); start += kChunk) {
    Dataset part = ds;
    part.items.assign(ds.items.begin() + static_cast<long>(start),
                      ds.items.begin() + static_cast<long>(std::min(ds.items.size(), start + kChunk)));
    part.skipped.clear();
    const size_t n_in = part.items.size();
    const std::vector<cv::Mat> images = load_dataset_images(part, lo);
    skipped.insert(skipped.end(), part.skipped.begin(), part.skipped.end());
    use(part.items, images);
    bar.advance(n_in);  // skipped images count as done too
  }
  bar.finish();
}

void evaluate_folders(const EvalOpts& o) {
  MaskClassifier clf(o.model);
  clf.warn_if_crops_differ(!o.no_face_crops, o.model);
  const ClassFold fold = ClassFold::make(clf.classes(), parse_class_mappings(o.maps));
  const auto& classes = fold.classes;
  const Dataset ds = evaluation_dataset(o, fold);
  if (o.no_gate) clf.set_quality_gate({});
  std::vector<int> truth, predicted;
  std::vector<std::string> sources;
  std::vector<double> p_right, confidence;
  Rows probs;
  json predictions = json::array();
  std::vector<cv::Mat> error_images;
  std::vector<std::string> error_captions;
  std::vector<SkippedImage> skipped;
  ProgressBar bar("eval", ds.items.size(), "img");
  for_each_loaded_chunk(ds, o, clf, bar, skipped, [&](const auto& items, const auto& images) {
    auto preds = clf.classify_batched(images, o.batch);
    for (auto& p : preds) fold.apply(p);
    for (size_t k = 0; k < preds.size(); ++k) {
      const auto& item = items[k];
      truth.push_back(item.label);
      predicted.push_back(preds[k].label);
      sources.push_back(item.source);
      probs.push_back(preds[k].probs);
      p_right.push_back(preds[k].p_right);
      confidence.push_back(preds[k].score);
      predictions.push_back({{"image", item.rel},
                             {"source", item.source},
                             {"label", classes[static_cast<size_t>(preds[k].label)]},
                             {"score", preds[k].score},
                             {"probs", preds[k].probs},  // each class evaluated, model order: for threshold studies
                             {"p_right", preds[k].p_right},
                             {"answered", preds[k].answered},
                             {"true", classes[static_cast<size_t>(item.label)]},
                             {"crop", crop_kind_name(item.crop)}});
      if (preds[k].label != item.label && error_images.size() < 60) {
        error_images.push_back(images[k]);
        error_captions.push_back(fmt::format("{} as {} {:.0f}%", item.rel.substr(item.rel.rfind('/') + 1),
                                             classes[static_cast<size_t>(preds[k].label)], preds[k].score * 100));
      }
    }
  });
  if (!skipped.empty()) spdlog::warn("skipped {} image(s) that could not be decoded", skipped.size());
  if (truth.empty()) throw Error("no image could be evaluated");
  const auto report = classification_report(truth, predicted, classes);
  const auto per_source = grouped_reports(truth, predicted, sources, classes);
  const auto calib = reliability(probs, truth);
  print_report(report);
  if (per_source.size() > 1)
    for (const auto& [name, r] : per_source)
      fmt::print("  source {:<22} n {:5}  accuracy {:6.2f}%  balanced {:6.2f}%\n", name, r.n, 100 * r.accuracy,
                 100 * r.balanced_accuracy);
  fmt::print("  expected calibration error (10 bins): {:.4f}\n", calib.ece);
  // Wrong answers the classifier was sure of (issue 19); with a gate, those it would show.
  const bool gated = clf.quality_gate().enabled();
  const auto sure = confidently_wrong(truth, predicted, confidence, gated ? p_right : confidence,
                                      gated ? clf.quality_gate().threshold : 0);
  fmt::print("  wrong at >= {:.0f} % confidence: {} of {} faces{}\n", 100 * kConfidentlyWrong, sure.inputs.size(),
             truth.size(), gated ? fmt::format(" ({} of them answered by the quality gate)", sure.answered) : "");
  json result = report.to_json();
  result["confidently_wrong"] = {
      {"min_confidence", kConfidentlyWrong}, {"count", sure.inputs.size()}, {"answered", sure.answered}};
  if (clf.quality_gate().enabled()) {
    const auto a = score_answered(p_right, truth, predicted, classes.size(), clf.quality_gate().threshold);
    fmt::print("  quality gate (P(right) >= {:.4f}): {:.2f}% of faces answered, balanced accuracy of those {:.2f}% "
               "(the others are shown as uncertain; the lines above count every face by its argmax)\n",
               clf.quality_gate().threshold, 100 * a.coverage, 100 * a.balanced);
    result["answered"] = {{"threshold", clf.quality_gate().threshold},
                          {"coverage", a.coverage},
                          {"balanced_accuracy", a.balanced}};
  }
  result["model"] = o.model;
  result["data"] = o.data;
  result["per_source"] = grouped_reports_json(per_source);
  result["ece"] = calib.ece;
  result["predictions"] = predictions;
  json skipped_json = json::array();
  for (const auto& s : skipped) skipped_json.push_back({{"image", s.rel}, {"reason", s.reason}});
  result["skipped"] = skipped_json;
  if (!o.json_out.empty()) write_json_atomic(o.json_out, result);
  if (!o.out.empty()) {
    const std::filesystem::path dir = o.out;
    save_png(dir / kConfusionSheet,
             draw_confusion(report.confusion, report.classes,
                            fmt::format("{} images, accuracy {:.2f}%", report.n, 100 * report.accuracy)));
    save_png_or_remove(dir / kErrorsSheet,
                       error_images.empty() ? cv::Mat() : draw_montage(error_images, error_captions));
    save_png(dir / kReliabilitySheet,
             draw_xy_chart(
                 fmt::format("{} images: ECE {:.4f}", report.n, calib.ece), "confidence (top class)", "accuracy",
                 {{"model", calib.confidence, calib.accuracy, cv::Scalar(200, 110, 30), true, false}}, true, true));
  }
}

// A gate fitted on another run's "validation" images may have been fitted on this model's
// training images: the split must come from the run that made the model (same data manifest).
void check_split_is_the_models(const EvalOpts& o) {
  const json meta = read_json(sidecar_path(o.model), "model sidecar");
  const json split = read_json(o.split, "split file");
  const std::string model_manifest = meta.value("training", json::object()).value("data_manifest_sha256", "");
  const std::string split_manifest = split.value("manifest_sha256", "");
  if (!model_manifest.empty() && !split_manifest.empty() && model_manifest != split_manifest)
    throw Error(fmt::format("{} comes from another run than {} (data manifest {}... against the model's {}...): its "
                            "validation images may be this model's training images",
                            o.split, o.model, split_manifest.substr(0, 8), model_manifest.substr(0, 8)));
}

// Writes `gate` into the model.json beside `model` (every other field as it was).
void write_quality_gate(const std::string& model, const QualityGate& gate) {
  const auto path = sidecar_path(model);
  json j = read_json(path, "model sidecar");
  j["quality_gate"] = gate.to_json();
  ModelMeta::from_json(j, path.string());  // still a valid sidecar
  write_json_atomic(path, j);
}

// `--conditions`: the crops decoded once, then classified under every camera condition
// (eval/conditions.h), rendered a chunk at a time.
void evaluate_under_conditions(const EvalOpts& o) {
  MaskClassifier clf(o.model);
  clf.warn_if_crops_differ(!o.no_face_crops, o.model);
  if (o.fit_gate) check_split_is_the_models(o);
  if (o.no_gate || o.fit_gate) clf.set_quality_gate({});
  ConditionInputs in;
  in.fold = ClassFold::make(clf.classes(), parse_class_mappings(o.maps));
  const Dataset ds = evaluation_dataset(o, in.fold);
  std::vector<std::string> names;
  std::vector<SkippedImage> skipped;
  {
    ProgressBar bar("decode", ds.items.size(), "img");
    for_each_loaded_chunk(ds, o, clf, bar, skipped, [&](const auto& items, const auto& images) {
      for (size_t k = 0; k < images.size(); ++k) {
        in.crops.push_back(images[k]);
        in.labels.push_back(items[k].label);
        in.sources.push_back(items[k].source);
        in.seeds.push_back(fnv1a(items[k].rel));  // the image's own noise, whatever else is evaluated
        names.push_back(items[k].rel);
      }
    });
  }
  if (!skipped.empty()) spdlog::warn("skipped {} image(s) that could not be decoded", skipped.size());
  if (in.crops.empty()) throw Error("no image could be evaluated");
  ProgressBar bar("conditions", in.crops.size() * camera_conditions().size(), "img");
  std::vector<GateSample> samples;
  auto report = evaluate_conditions(clf, in, o.batch, &bar, o.fit_gate ? &samples : nullptr);
  bar.finish();
  if (o.fit_gate) {
    GateFitOptions fit;
    fit.target = o.gate_target;
    // With a --map that folds model classes (a three-class model's chin masks into without_mask),
    // the gate judges the folded answer, and the classifier folds the same way before it asks it.
    FittedGate fitted;
    try {
      fitted = fit_gate_on_report(report, samples, in.fold, fit);
    } catch (const GateAnswersNothing& e) {
      throw Error(fmt::format("{}: a gate that answers nothing was not written (lower --gate-target)", e.what()));
    }
    QualityGate& gate = fitted.gate;
    json data = json::array();
    for (const auto& d : o.data) data.push_back(std::filesystem::absolute(d).lexically_normal().string());
    gate.fit["data"] = data;
    gate.fit["split"] = {{"file", std::filesystem::absolute(o.split).lexically_normal().string()}, {"subset", o.subset}};
    const auto& at = report.results[fitted.at];
    for (size_t c = 0; c < at.answered.coverage_of.size(); ++c)
      if (at.answered.coverage_of[c] < 0.5)
        spdlog::warn("the gate answers {:.1f} % of the {} faces under '{}'", 100 * at.answered.coverage_of[c],
                     report.classes[c], fit.threshold_condition);
    write_quality_gate(o.model, gate);
    fmt::print("quality gate fitted on {} crops x {} conditions: answer when P(right) >= {:.4f}; written to {}\n",
               in.crops.size(), report.results.size(), gate.threshold, sidecar_path(o.model).string());
  }
  fmt::print(
      "balanced accuracy (%) under camera conditions; change from clean in points; r = recall; sure-wrong = "
      "wrong answers at >= {:.0f} % confidence{}; per source after |\n{}",
      100 * kConfidentlyWrong, report.gated ? " (every face / those the gate answers)" : "", report.table());
  json result = report.to_json();
  for (auto& s : result["samples"]) s["image"] = names.at(s["index"].get<size_t>());
  for (auto& c : result["conditions"])
    for (auto& e : c["confidently_wrong"]["inputs"]) e["image"] = names.at(e["index"].get<size_t>());
  result["model"] = o.model;
  result["data"] = o.data;
  if (!o.split.empty()) result["split"] = {{"file", o.split}, {"subset", o.subset}};
  json skipped_json = json::array();
  for (const auto& s : skipped) skipped_json.push_back({{"image", s.rel}, {"reason", s.reason}});
  result["skipped"] = skipped_json;
  if (!o.json_out.empty()) write_json_atomic(o.json_out, result);
  if (!o.out.empty()) {
    save_png(std::filesystem::path(o.out) / kConditionsSheet, draw_conditions_sheet(report));
    save_png(std::filesystem::path(o.out) / kRiskCoverageSheet, draw_risk_coverage(report));
    fmt::print("wrote {} and {} to {}\n", kConditionsSheet, kRiskCoverageSheet, o.out);
  }
}

void print_scene_block(const std::string& title, const json& r) {
  fmt::print("{} ({} scenes)\n", title, r["images"].get<int>());
  if (r.value("map_classes", 1) == 0) {
    fmt::print("  no labelled faces of the evaluated classes here: no AP to report ({} detections)\n",
               r["detections"].get<int>());
    return;
  }
  fmt::print("  mAP@0.5 {:.4f}   one label per face, every false face counts (headline)\n", r["map"].get<double>());
  fmt::print("  mAP@0.5 {:.4f}   per-class-score variant (every face offered under every class; kinder)\n",
             r["per_class_score_map"].get<double>());
  fmt::print("  face AP {:.4f}   {} labelled faces; at the operating point recall {:.4f}, precision {:.4f}\n",
             r["face_ap"].get<double>(), r["face_positives"].get<int>(), r["face_recall"].get<double>(),
             r["face_precision"].get<double>());
  for (const auto& [name, c] : r["per_class"].items()) {
    const auto& op = c["operating_point"];
    if (c["positives"].get<int>() == 0) {
      fmt::print("  {:<22} no labelled faces of this class here: left out of mAP ({} detections shown with it)\n",
                 name, op["fp"].get<int>());
      continue;
    }
    fmt::print("  {:<22} AP {:.4f}  positives {:4}  at the operating point: precision {:.4f} recall {:.4f}\n", name,
               c["ap"].get<double>(), c["positives"].get<int>(), op["precision"].get<double>(),
               op["recall"].get<double>());
  }
  if (const auto& w = r["worn_incorrectly"]; w["boxes"].get<int>() > 0)
    fmt::print("  masks worn incorrectly: {} labelled, {} found, {} of them shown as with_mask ({:.1f} % not)\n",
               w["boxes"].get<int>(), w["found"].get<int>(), w["shown_with_mask"].get<int>(),
               100 * w["not_with_mask_share"].get<double>());
}

void evaluate_scene_folder(const EvalOpts& o) {
  MaskClassifier clf(o.model);
  clf.warn_if_crops_differ(true, o.model);
  FaceDetectorOptions fo;
  fo.model = o.face_model;
  fo.score_threshold = o.face_threshold;
  fo.nms_threshold = o.face_nms;
  fo.detect_width = o.detect_width;
  // As `detect` looks at still images; not when fitting the box correction, which reads each
  // face's size at the first pass's scale.
  fo.close_up_retry = !o.no_close_up_retry && !o.fit_boxes;
  fo.multi_look = !o.single_look && !o.fit_boxes;
  if (o.fit_boxes) fo.box_correction = BoxCorrection{};  // fit on the detector's own boxes
  FaceDetector detector(fo);
  Pipeline pipeline(clf, detector);
  SceneEvalOptions so;
  so.classes = o.classes;
  so.class_map = parse_class_mappings(o.maps);
  so.fit_boxes = o.fit_boxes;
  if (!o.split.empty()) {
    so.subset = unseen_scenes(o.split);
    so.subset_name = "scenes none of whose crops the classifier trained on (test subset of " + o.split + ")";
  }
  if (!o.half.empty()) {
    // A held-out half for a detector trained with `train-faces --hold-out`; with --split, the
    // scenes in both.
    auto half = voc_scenes_of_parity(o.scenes, o.half == "odd" ? 1 : 0);
    if (!o.split.empty()) {
      std::set<std::string> both;
      for (const auto& s : half)
        if (so.subset.count(s)) both.insert(s);
      half = std::move(both);
    }
    if (half.empty())
      throw Error(fmt::format("--half {}: no scenes of {} in that half{}", o.half, o.scenes,
                              o.split.empty() ? "" : " that are also unseen by the split's classifier"));
    so.subset = std::move(half);
    so.subset_name = o.half + "-numbered scenes" + (o.split.empty() ? "" : " that are also " + so.subset_name);
  }
  auto report = evaluate_scenes(o.scenes, pipeline, clf.classes(), so, o.out);
  report["model"] = o.model;
  report["scenes"] = o.scenes;
  report["face_detector"] = detector.description();
  fmt::print("face detector: {}\n", detector.description());
  print_scene_block("all scenes", report);
  if (report.contains("subset")) print_scene_block(report["subset"]["name"].get<std::string>(), report["subset"]);
  if (report.contains("box_fit")) {
    const auto& b = report["box_fit"];
    const auto& c = b["correction"];
    const auto term = [&](const char* k) {
      return fmt::format("{:+.4f} {:+.4f} L", c[k][0].get<double>(), c[k][1].get<double>());
    };
    const int pairs = b["fitted_on_faces"].get<int>();
    if (pairs < kMinBoxFitPairs)
      fmt::print("box correction: none fitted: {} faces matched a labelled one in the {} even-numbered scenes, "
                 "{} needed (the odd-numbered scenes below are scored as the detector gives them both times)\n",
                 pairs, b["fitted_on_images"].get<int>(), kMinBoxFitPairs);
    else
      fmt::print(
          "box correction fitted on {} faces of {} even-numbered scenes (L = log2(box width in detector pixels / "
          "32)):\n  dx {}   dy {}   log width ratio {}   log height ratio {}\n",
          pairs, b["fitted_on_images"].get<int>(), term("dx"), term("dy"), term("lw"), term("lh"));
    print_scene_block("odd-numbered scenes, boxes as the detector gives them", b["held_out_without"]);
    print_scene_block("odd-numbered scenes, boxes corrected", b["held_out_with"]);
  }
  if (!o.out.empty()) {
    const auto sheet = [](const char* name, int n, const char* what) {
      return n > 0 ? fmt::format("{} ({} {})", name, n, what) : fmt::format("no {} (no {})", name, what);
    };
    fmt::print("wrote {}, {}, {} to {}\n", kPrCurvesSheet,
               sheet(kMissedFacesSheet, report["missed_faces"].get<int>(), "missed"),
               sheet(kFalseFacesSheet, report["false_faces"].get<int>(), "false"), o.out);
  }
  if (!o.json_out.empty()) write_json_atomic(o.json_out, report);
}

std::string conditions_help() {
  std::string h =
      "Classify the same decoded crops under each camera condition (light is changed in linear light; "
      "noise is seeded per image, so reruns give the same pixels) and report n, balanced accuracy, recall per "
      "class and balanced accuracy per source for each. The conditions:";
  for (const auto& c : camera_conditions()) h += fmt::format("\n  {}: {}", c.name, c.description);
  return h;
}

}  // namespace

void add_eval_command(CLI::App& root) {
  auto o = std::make_shared<EvalOpts>();
  auto* cmd = root.add_subcommand("eval", "Evaluate a model on labelled folders (one sub-folder per class)");
  cmd->add_option("--model", o->model,
                  "model.onnx (with model.json beside it), or an ensemble's .json (`maskwatch ensemble`); by default "
                  "what every command uses: the shipped ensemble of four models, models/ensemble.json, where it is "
                  "installed, else models/model.onnx")
      ->capture_default_str();
  auto* data = cmd->add_option("--data", o->data,
                               "Folder with one sub-folder per class (repeatable); names must be "
                               "model classes or mapped with --map");
  auto* scenes = cmd->add_option("--scenes", o->scenes,
                                 "Pascal VOC folder (images/ + annotations/*.xml): detection + classification end to "
                                 "end. Headline mAP@0.5 scores what the user sees: one detection per face with the "
                                 "label shown (argmax; a class not evaluated counts as without_mask), score = face "
                                 "score x that label's probability; each detection takes the highest-IoU box of its "
                                 "class or an ignore region (faces under 32 px, difficult and incorrectly-worn "
                                 "boxes); IoU >= 0.5 with its class is a hit, a second hit on one face or any other "
                                 "detection of any size is a false positive. Also: the kinder per-class-score mAP "
                                 "(every face under every class), class-agnostic face AP, PR curves and contact "
                                 "sheets of missed and false faces (--out). With --split: the same for the scenes "
                                 "whose crops are all in that training run's test subset");
  data->excludes(scenes);
  auto* conditions = cmd->add_flag("--conditions", o->conditions, conditions_help());
  conditions->excludes(scenes);
  auto* fit_gate = cmd->add_flag(
      "--fit-gate", o->fit_gate,
      "With --conditions and --split ... --subset val: fit the quality gate (when a face cannot be judged: its "
      "light, contrast, sharpness, noise and the classifier's margin -> P(right)) on these crops under every "
      "condition, set its threshold where the answered faces under 'dim webcam' reach --gate-target balanced "
      "accuracy, and write it into the model's model.json, or into the ensemble's .json for an ensemble "
      "(atomically; the .onnx files and the members' sidecars are not touched). With a --map "
      "that folds a model class (a three-class model: --map mask_worn_incorrectly=without_mask), the gate judges "
      "the folded answer, mask worn or not, as run, serve and their counts use it");
  fit_gate->needs(conditions);
  cmd->add_option("--gate-target", o->gate_target, "With --fit-gate: balanced accuracy the answered faces must reach")
      ->capture_default_str()
      ->check(in_range(0.5, 0.99999))
      ->needs(fit_gate);
  cmd->add_flag("--no-gate", o->no_gate,
                "Ignore the model's quality gate (every face answered), to compare with and without it");
  cmd->add_option("--classes", o->classes,
                  "With --scenes: classes to evaluate (default with_mask without_mask; boxes "
                  "of other classes are ignored)")
      ->needs(scenes);
  cmd->add_option("--detect-width", o->detect_width, "With --scenes: width images are scaled to for face detection")
      ->capture_default_str()
      ->check(in_range(64, 4096))
      ->needs(scenes);
  cmd->add_flag("--no-close-up-retry", o->no_close_up_retry,
                "With --scenes: do not look again at a scene in which no face is found (as `detect "
                "--no-close-up-retry`; --fit-boxes never does)")
      ->needs(scenes);
  cmd->add_flag("--single-look", o->single_look,
                "With --scenes: look for faces once per scene, as `run` looks at a video frame (by default four "
                "times, as `detect` looks at a still: at the detect width and 1.25 times it, each also mirrored, "
                "the faces fused; --fit-boxes always looks once)")
      ->needs(scenes);
  cmd->add_flag("--fit-boxes", o->fit_boxes,
                "With --scenes: fit a box correction (centre shift, size ratio) to the labelled boxes on the "
                "even-numbered scenes and report the odd-numbered ones with and without it (one look at each "
                "scene, as `run` sees a frame)")
      ->needs(scenes);
  cmd->add_option("--half", o->half,
                  "With --scenes: also report the odd- or even-numbered scenes (sorted annotation order) on their "
                  "own, e.g. the half a detector from `train-faces --hold-out` never saw")
      ->check(CLI::IsMember({"odd", "even"}))
      ->needs(scenes);
  cmd->add_option("--face-threshold", o->face_threshold, "With --scenes: minimum YuNet face score")
      ->capture_default_str()
      ->check(in_range(0.05, 1.0))
      ->needs(scenes);
  cmd->add_option("--face-nms", o->face_nms,
                  "With --scenes: IoU above which the weaker of two overlapping face boxes is dropped")
      ->capture_default_str()
      ->check(in_range(0.05, 0.95))
      ->needs(scenes);
  auto* exclude = cmd->add_option("--exclude", o->exclude,
                  "File of image names (data-folder/class/file) to leave out, as `train --exclude` (e.g. "
                  "data/label-exclusions.txt: the labels reviewed as wrong)");
  exclude->excludes(scenes);
  cmd->add_option("--map", o->maps,
                  "Count a class folder as a model class: FROM=TO (repeatable). Where FROM is also a model "
                  "class (a three-class model), its answers count as TO too: the label shown, folded, is scored. "
                  "With --scenes it maps labelled classes, e.g. mask_worn_incorrectly=without_mask scores a chin "
                  "mask shown as with_mask as a miss and a false face")
      ->check(checked_by(parse_class_mapping, "FROM=TO"));
  cmd->add_option("--json", o->json_out,
                  "Write n, accuracy, balanced_accuracy, per_class, per_source, confusion, ece, predictions "
                  "(each image: label, score, probs of every class, p_right), confidently_wrong (with "
                  "--conditions: per condition n, balanced_accuracy, recall per class, per_source, confusion, "
                  "confidently_wrong: the wrong answers at >= 90 % confidence, image by image)");
  auto* split = cmd->add_option("--split", o->split,
                  "split.json of a training run: evaluate only one of its splits (with --scenes: also report the "
                  "scenes the classifier never trained on)");
  cmd->add_option("--subset", o->subset,
                  "With --split: train, val or test (with --scenes the scenes reported beside all are always those "
                  "of the test subset)")
      ->capture_default_str()
      ->check(CLI::IsMember({"train", "val", "test"}))
      ->needs(split)
      ->excludes(scenes);
  cmd->add_option("--out", o->out,
                  "Also write confusion.png, errors.png (misclassified images) and reliability.png (or, with --scenes, "
                  "pr_curves.png, missed_faces.png and false_faces.png; with --conditions, conditions.png: 8 fixed "
                  "sample crops under every condition, and risk_coverage.png) here. A sheet with nothing to show is "
                  "not written, and one left by an earlier run is removed");
  cmd->add_flag("--no-face-crops", o->no_face_crops,
                "Classify whole images instead of the crop around the detected face")
      ->excludes(scenes);
  cmd->add_option("--face-model", o->face_model, face_model_help());
  cmd->add_option("--batch", o->batch, "Images per forward")->capture_default_str()->check(in_range(1, 256));
  add_threads_option(cmd, o->threads);
  cmd->callback([o] {
    set_compute_threads(o->threads);
    if (std::set<std::string>(o->classes.begin(), o->classes.end()).size() != o->classes.size())
      throw CLI::ValidationError("--classes", "a class is named twice");
    refuse_outputs_over_inputs(*o);
    if (!o->json_out.empty()) check_output_path(o->json_out, "JSON file");
    if (!o->out.empty()) check_output_dir(o->out, "output folder");
    if (!o->scenes.empty()) return evaluate_scene_folder(*o);
    if (o->data.empty()) throw CLI::RequiredError("--data or --scenes");
    if (!std::isfinite(o->gate_target)) throw Error("--gate-target must be a number between 0.5 and 0.99999");
    if (o->fit_gate && (o->split.empty() || o->subset != "val"))
      throw Error("--fit-gate fits on the validation crops: give --split <run>/split.json --subset val (fitting on "
                  "test crops would make every score on them optimistic)");
    if (o->conditions) return evaluate_under_conditions(*o);
    evaluate_folders(*o);
  });
}

}  // namespace maskwatch::app
