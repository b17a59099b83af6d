// `maskwatch imagenet`: sanity check that a .tflite backbone imported correctly.
#include <fmt/format.h>

#include <spdlog/spdlog.h>

#include <filesystem>
#include <iostream>

#include "app/cli.h"
#include "app/train/commands.h"
#include "nn/imagenet.h"
#include "nn/tflite_import.h"
#include "nn/torch_setup.h"
#include "util/error.h"
#include "util/files.h"
#include "util/json_io.h"
#include "util/paths.h"

namespace maskwatch::app {

void add_imagenet_command(CLI::App& root) {
  struct Opts {
    std::string backbone = asset_path(kQuantBackbone).string();
    std::string labels = asset_path(kImagenetLabels).string();
    std::vector<std::string> images;
    std::string json_out;
    int top = 5;
    int threads = 0;
  };
  auto opts = std::make_shared<Opts>();
  auto* cmd = root.add_subcommand(
      "imagenet", "Classify images with the ImageNet top of a MobileNetV2 .tflite (checks the backbone import)");
  cmd->add_option("--backbone", opts->backbone, "MobileNetV2 .tflite file")->capture_default_str();
  cmd->add_option("--labels", opts->labels, "ImageNet label file, one per line")->capture_default_str();
  cmd->add_option("images", opts->images, "Images to classify")->required();
  cmd->add_option("--json", opts->json_out, "Write [{image, top5: [{label, index, prob}]}] here");
  cmd->add_option("--top", opts->top, "How many classes to print")->capture_default_str()->check(in_range(1, 1000));
  add_threads_option(cmd, opts->threads);
  cmd->callback([opts] {
    if (!opts->json_out.empty()) {  // before the work, and never over what it reads
      std::vector<std::filesystem::path> inputs(opts->images.begin(), opts->images.end());
      inputs.insert(inputs.end(), {opts->backbone, opts->labels});
      InputFiles(inputs).refuse_overwriting(opts->json_out, "JSON file");
      check_output_path(opts->json_out, "JSON file");
    }
    setup_training_compute(opts->threads);
    TfliteImportReport report;
    auto net = load_imagenet_mobilenet(opts->backbone, &report);
    auto labels = read_labels(opts->labels);
    while (!labels.empty() && labels.back().empty()) labels.pop_back();  // a trailing blank line
    // A label file of another length names every class wrongly (the common 1,000-line file
    // without "background" shifts each name by one): refused, not printed.
    if (static_cast<int>(labels.size()) != report.top_classes)
      throw Error(fmt::format("{} has {} labels, the backbone {} classes{}", opts->labels, labels.size(),
                              report.top_classes,
                              labels.size() + 1 == static_cast<size_t>(report.top_classes)
                                  ? " (its first class is 'background': the file needs that line first)"
                                  : ""));
    fmt::print("backbone {}: {} weights, {} convs, {} classes\n", opts->backbone, report.weight_format, report.convs,
               report.top_classes);
    json results = json::array();
    int skipped = 0;
    for (const auto& image : opts->images) {
      std::vector<ClassScore> top;
      try {
        top = imagenet_topk(net, labels, image, opts->top);
      } catch (const Error& e) {  // one unreadable image does not lose the others' answers
        spdlog::warn("{} (skipped)", e.what());
        ++skipped;
        continue;
      }
      fmt::print("{}\n", image);
      json entry{{"image", image}, {"top5", json::array()}};
      for (const auto& c : top) {
        fmt::print("  {:6.2f}%  {:4d}  {}\n", c.prob * 100, c.index, c.label);
        entry["top5"].push_back({{"label", c.label}, {"index", c.index}, {"prob", c.prob}});
      }
      results.push_back(entry);
    }
    if (results.empty()) throw Error(fmt::format("none of the {} images could be read", skipped));
    if (!opts->json_out.empty()) write_json_atomic(opts->json_out, results);
    if (skipped) fmt::print("{} of {} images skipped (unreadable)\n", skipped, opts->images.size());
  });
}

}  // namespace maskwatch::app
