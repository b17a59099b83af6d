// `maskwatch eval`: accuracy of an exported model on a labelled folder (optionally only the
// test split of a training run), through the same OpenCV DNN path the detector uses.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <set>

#include "app/commands.h"
#include "util/threads.h"
#include "data/dataset.h"
#include "data/image_io.h"
#include "data/split_file.h"
#include "eval/metrics.h"
#include "eval/plots.h"
#include "util/error.h"
#include "util/json_io.h"
#include "util/paths.h"
#include "util/progress.h"
#include "vision/mask_classifier.h"

namespace maskwatch::app {

void add_eval_command(CLI::App& root) {
  struct Opts {
    std::string model = default_model_path().string(), data, json_out, split, subset = "test", out;
    int batch = 16, threads = 0;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = root.add_subcommand("eval", "Evaluate a model on a labelled folder (one sub-folder per class)");
  cmd->add_option("--model", o->model, "model.onnx (with model.json beside it)")->capture_default_str();
  cmd->add_option("--data", o->data, "Folder with one sub-folder per class; names must be model classes")->required();
  cmd->add_option("--json", o->json_out, "Write n, accuracy, balanced_accuracy, per_class, confusion, predictions");
  cmd->add_option("--split", o->split, "split.json of a training run: evaluate only one of its splits");
  cmd->add_option("--subset", o->subset, "With --split: train, val or test")->capture_default_str()
      ->check(CLI::IsMember({"train", "val", "test"}));
  cmd->add_option("--out", o->out, "Also write confusion.png and errors.png (misclassified images) here");
  cmd->add_option("--batch", o->batch, "Images per forward")->capture_default_str()->check(CLI::Range(1, 256));
  cmd->add_option("--threads", o->threads, "CPU threads (0 = all cores)")->capture_default_str();
  cmd->callback([o] {
    set_compute_threads(o->threads);
    MaskClassifier clf(o->model);
    Dataset ds = scan_dataset(o->data, clf.classes(), 1);
    if (!o->split.empty()) {
      const Split which = o->subset == "train" ? Split::Train : o->subset == "val" ? Split::Val : Split::Test;
      const auto members = split_members(read_json(o->split, "split file"), which, o->split);
      const std::set<std::string> keep(members.begin(), members.end());
      std::vector<DatasetItem> items;
      for (auto& it : ds.items)
        if (keep.count(it.rel)) items.push_back(it);
      if (items.empty()) throw Error(fmt::format("none of the {} split's images are in {}", o->subset, o->data));
      ds.items = std::move(items);
    }
    std::vector<int> truth, predicted;
    json predictions = json::array();
    std::vector<cv::Mat> error_images;
    std::vector<std::string> error_captions;
    ProgressBar bar("eval", ds.items.size(), "img");
    for (size_t i = 0; i < ds.items.size(); i += static_cast<size_t>(o->batch)) {
      const size_t end = std::min(ds.items.size(), i + static_cast<size_t>(o->batch));
      std::vector<cv::Mat> images;
      std::vector<size_t> idx;
      for (size_t j = i; j < end; ++j) {
        std::string why;
        cv::Mat img = load_image(ds.items[j].path, &why);
        if (img.empty()) {
          ds.skipped.push_back({ds.items[j].rel, why});
          continue;
        }
        images.push_back(img);
        idx.push_back(j);
      }
      const auto preds = clf.classify(images);
      for (size_t k = 0; k < preds.size(); ++k) {
        const auto& item = ds.items[idx[k]];
        truth.push_back(item.label);
        predicted.push_back(preds[k].label);
        predictions.push_back({{"image", item.rel},
                               {"label", clf.classes()[static_cast<size_t>(preds[k].label)]},
                               {"score", preds[k].score},
                               {"true", clf.classes()[static_cast<size_t>(item.label)]}});
        if (preds[k].label != item.label && error_images.size() < 60) {
          error_images.push_back(images[k]);
          error_captions.push_back(fmt::format("{} as {} {:.0f}%", item.rel,
                                               clf.classes()[static_cast<size_t>(preds[k].label)], preds[k].score * 100));
        }
      }
      bar.advance(end - i);  // skipped images count as done too
    }
    bar.finish();
    if (!ds.skipped.empty()) spdlog::warn("skipped {} image(s) that could not be decoded", ds.skipped.size());
    if (truth.empty()) throw Error("no image could be evaluated");
    const auto report = classification_report(truth, predicted, clf.classes());
    fmt::print("{} images: accuracy {:.2f}%, balanced accuracy {:.2f}%\n", report.n, 100 * report.accuracy,
               100 * report.balanced_accuracy);
    for (size_t c = 0; c < report.classes.size(); ++c)
      fmt::print("  {:<16} precision {:6.2f}%  recall {:6.2f}%  f1 {:.4f}  n {}\n", report.classes[c],
                 100 * report.per_class[c].precision, 100 * report.per_class[c].recall, report.per_class[c].f1,
                 report.per_class[c].n);
    json result = report.to_json();
    result["model"] = o->model;
    result["data"] = o->data;
    result["predictions"] = predictions;
    json skipped = json::array();
    for (const auto& s : ds.skipped) skipped.push_back({{"image", s.rel}, {"reason", s.reason}});
    result["skipped"] = skipped;
    if (!o->json_out.empty()) write_json_atomic(o->json_out, result);
    if (!o->out.empty()) {
      save_png(std::filesystem::path(o->out) / "confusion.png",
               draw_confusion(report.confusion, report.classes,
                              fmt::format("{} images, accuracy {:.2f}%", report.n, 100 * report.accuracy)));
      if (!error_images.empty())
        save_png(std::filesystem::path(o->out) / "errors.png", draw_montage(error_images, error_captions));
    }
  });
}

}  // namespace maskwatch::app
