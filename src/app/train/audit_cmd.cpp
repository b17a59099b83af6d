// `maskwatch audit`: likely label errors, ranked (see train/audit.h).
#include <fmt/format.h>

#include "app/cli.h"
#include "app/train/commands.h"
#include "data/dataset.h"
#include "nn/torch_setup.h"
#include "train/audit.h"
#include "util/files.h"
#include "util/paths.h"

namespace maskwatch::app {

void add_audit_command(CLI::App& root) {
  auto o = std::make_shared<AuditOptions>();
  auto data = std::make_shared<std::vector<std::string>>(), maps = std::make_shared<std::vector<std::string>>();
  auto out = std::make_shared<std::string>(), exclude = std::make_shared<std::string>();
  auto backbone = std::make_shared<std::string>(asset_path(kQuantBackbone).string());
  auto threads = std::make_shared<int>(0);
  auto no_face_crops = std::make_shared<bool>(false);
  auto* cmd = root.add_subcommand(
      "audit",
      "Find likely label errors: out-of-fold predictions on cached features, a ranked CSV and a contact sheet");
  cmd->add_option("--data", *data, "Folder with one sub-folder of images per class (repeatable)")->required();
  cmd->add_option("--map", *maps, "Fold a class folder into a class: FROM=TO (repeatable)")
      ->check(checked_by(parse_class_mapping, "FROM=TO"));
  cmd->add_option("--exclude", *exclude, "File of image names to leave out");
  cmd->add_option("--out", *out, "Where audit.csv, audit.png, audit.json and the feature cache go")->required();
  cmd->add_option("--backbone", *backbone, "MobileNetV2 .tflite with ImageNet weights")->capture_default_str();
  check_input_size_option(
      cmd->add_option("--input-size", o->input_size, "Square input size of the features: a multiple of 32 from 96 to 224")
          ->capture_default_str());
  cmd->add_option("--folds", o->folds, "Folds for out-of-fold predictions")
      ->capture_default_str()
      ->check(in_range(2, 20));
  cmd->add_option("--epochs", o->epochs, "Head epochs per fold")->capture_default_str()->check(in_range(1, 1000));
  cmd->add_option("--sheet", o->sheet, "Images on the contact sheet")
      ->capture_default_str()
      ->check(in_range(1, 2000));
  cmd->add_option("--seed", o->seed, "Seed for folds and heads")
      ->capture_default_str()
      ->check(in_range(0.0, 1.8446744073709552e19));
  cmd->add_flag("--no-face-crops", *no_face_crops, "Use whole images instead of the run-time face crop");
  add_threads_option(cmd, *threads);
  cmd->callback([=] {
    setup_training_compute(*threads);
    for (const auto& d : *data) o->data.emplace_back(d);
    o->class_map = parse_class_mappings(*maps);
    o->exclude = *exclude;
    o->out = *out;
    for (const auto& d : o->data) refuse_output_inside(o->out, d, "--out");
    o->backbone = *backbone;
    o->face_crops = !*no_face_crops;
    const auto r = run_audit(*o);
    fmt::print("{} images, out-of-fold accuracy {:.2f}%{}; {} flagged as likely label errors\n", r.images,
               100 * r.out_of_fold_accuracy, r.features_from_cache ? " (cached features)" : "", r.flagged);
    for (const auto& [source, fn] : r.flagged_per_source)
      fmt::print("  {:<22} {:5} of {:5} ({:.1f}%)\n", source, fn.first, fn.second, 100.0 * fn.first / fn.second);
    fmt::print("ranked list: {0}/audit.csv; contact sheet of the top {1}: {0}/audit.png{2}\n", o->out.string(),
               r.sheet_images, r.sheet_pages > 1 ? fmt::format(" to audit-{}.png", r.sheet_pages) : "");
  });
}

}  // namespace maskwatch::app
