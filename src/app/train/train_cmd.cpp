// `maskwatch train`: two-phase transfer learning (see train/trainer.h).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cmath>

#include "app/cli.h"
#include "app/train/commands.h"
#include "data/dataset.h"
#include "nn/torch_setup.h"
#include "train/trainer.h"
#include "util/error.h"
#include "util/paths.h"
#include "util/stop_signals.h"

namespace maskwatch::app {
namespace {
std::string join_args(int argc, char** argv) {
  std::string s = "maskwatch";
  for (int i = 1; i < argc; ++i) s += std::string(" ") + argv[i];
  return s;
}
int g_argc = 0;
char** g_argv = nullptr;

// SOURCE=W (or SOURCE/CLASS=W) with W a weight TrainOptions::valid_source_weight takes.
std::pair<std::string, double> parse_source_weight(const std::string& spec) {
  const auto [source, value] = parse_class_mapping(spec);
  size_t used = 0;
  double w = 0;
  try {
    w = std::stod(value, &used);
  } catch (const std::exception&) {
  }
  if (used != value.size() || !TrainOptions::valid_source_weight(w))
    throw Error(fmt::format("{}: the weight must be {}", spec, TrainOptions::kSourceWeightRule));
  return {source, w};
}

void print_result(const TrainOptions& o, const TrainingMetrics& m) {
  const auto& t = m.test.overall;
  fmt::print("\nmodel:    {}/model.onnx (+ model.json, MODEL_CARD.md)\n", o.out.string());
  if (t.n == 0)  // ("accuracy 0.00% on 0 images" read as a model that is always wrong)
    fmt::print("test:     no test image (--test-fraction {}, or too few images)\n", o.fractions.test);
  else
    fmt::print("test:     accuracy {:.2f}% on {} images, balanced {:.2f}%\n", 100 * t.accuracy, t.n,
               100 * t.balanced_accuracy);
  for (const auto& [source, r] : m.test.per_source)
    fmt::print("          {:<22} n {:5}  balanced {:.2f}%\n", source, r.n, 100 * r.balanced_accuracy);
  if (m.calibration.skipped.empty())
    fmt::print("calibrated: temperature {:.3f}, test ECE {:.4f} -> {:.4f}\n", m.calibration.temperature,
               m.calibration.test_ece_before, m.calibration.test_ece_after);
  else
    fmt::print("calibrated: no ({})\n", m.calibration.skipped);
  fmt::print("time:     data {:.0f} s, phase 1 {:.0f} s, phase 2 {:.0f} s, whole run {:.0f} s\n", m.timing.data_s(),
             m.timing.phase1_s, m.timing.phase2_s, m.timing.wall_s);
  fmt::print("plots:    {0}/curves.png {0}/confusion.png {0}/reliability.png\n", o.out.string());
}
}  // namespace

void remember_command_line(int argc, char** argv) {
  g_argc = argc;
  g_argv = argv;
}

void add_train_command(CLI::App& root) {
  auto o = std::make_shared<TrainOptions>();
  auto data = std::make_shared<std::vector<std::string>>(), maps = std::make_shared<std::vector<std::string>>(),
       weights = std::make_shared<std::vector<std::string>>(), baselines = std::make_shared<std::vector<std::string>>();
  auto out = std::make_shared<std::string>(), exclude = std::make_shared<std::string>(default_exclude_path().string());
  auto backbone = std::make_shared<std::string>(asset_path(kQuantBackbone).string());
  auto flags = std::make_shared<std::map<std::string, bool>>();
  auto* cmd = root.add_subcommand("train",
                                  "Train the mask classifier: ImageNet MobileNetV2 + head, two phases, then export "
                                  "model.onnx + model.json with metrics, curves, calibration and a model card");
  cmd->add_option("--data", *data,
                  "Folder with one sub-folder of images per class; repeat to train on several (class folders merge "
                  "by name). Default: ../shared/data/seed-masks, ../shared/data/real-masks and "
                  "../shared/data/real-masks-incorrect, its masks under the nose or chin folded into without_mask "
                  "(--map mask_worn_incorrectly=without_mask) and sampled 6x (--source-weight "
                  "jolignier/mask_worn_incorrectly=6)");
  cmd->add_option("--map", *maps,
                  "Fold a class folder into a class: FROM=TO, e.g. mask_worn_incorrectly=without_mask "
                  "(repeatable)")
      ->check(checked_by(parse_class_mapping, "FROM=TO"));
  cmd->add_option("--source-weight", *weights,
                  "Sampling weight of a source: SOURCE=W (each image is seen about W times per epoch; default 1; "
                  "repeatable); SOURCE/CLASS=W weights one class of a source, e.g. "
                  "jolignier/mask_worn_incorrectly=6 for the chin masks of a three-class model")
      ->check(checked_by(parse_source_weight, "SOURCE=W"));
  cmd->add_option("--exclude", *exclude, "File of image names (data-folder/class/file) to leave out")
      ->capture_default_str();
  cmd->add_flag("--no-exclude", (*flags)["no_exclude"], "Use every image (ignore the exclusion list)");
  cmd->add_option("--out", *out, "Output folder (model, metrics, plots, split, checkpoints)")->required();
  cmd->add_option("--split", o->split,
                  "Reuse the split.json of another run on the same data (compare recipes on one "
                  "split; skips the near-duplicate search)");
  cmd->add_option("--backbone", *backbone, "MobileNetV2 .tflite with ImageNet weights")->capture_default_str();
  cmd->add_option("--baseline-model", *baselines, "Also evaluate this model.onnx on the test split (repeatable)");
  cmd->add_option("--epochs", o->epochs, "Phase 1 epochs (backbone frozen)")
      ->capture_default_str()
      ->check(in_range(1, 10000));
  cmd->add_option("--fine-tune-epochs", o->fine_tune_epochs, "Phase 2 epochs (top blocks unfrozen)")
      ->capture_default_str()
      ->check(in_range(0, 10000));
  cmd->add_option("--views", o->views, "Augmented views of each training image, cycled through the epochs")
      ->capture_default_str()
      ->check(in_range(1, 100));
  cmd->add_option("--batch", o->batch, "Batch size")->capture_default_str()->check(in_range(1, 1024));
  check_input_size_option(
      cmd->add_option("--input-size", o->input_size, "Square input size: a multiple of 32 from 96 to 224")
          ->capture_default_str());
  cmd->add_option("--seed", o->seed, "Seed for split, shuffling, augmentation and initialisation")
      ->capture_default_str()
      ->check(in_range(0.0, 1.8446744073709552e19));  // not -1 read as 2^64 - 1
  cmd->add_option("--lr", o->lr, "Phase 1 Adam learning rate")->capture_default_str()->check(in_range(1e-9, 1.0));
  cmd->add_option("--fine-tune-lr", o->fine_tune_lr, "Phase 2 Adam learning rate")
      ->capture_default_str()
      ->check(in_range(1e-9, 1.0));
  cmd->add_option("--fine-tune-from-block", o->fine_tune_from_block,
                  "Phase 2 trains inverted-residual blocks from this one (0..16) and the final conv")
      ->capture_default_str()
      ->check(in_range(0, 16));
  cmd->add_option("--patience", o->patience, "Stop a phase after N epochs without val-loss improvement (0 = off)")
      ->capture_default_str()
      ->check(in_range(0, 10000));
  cmd->add_option("--val-fraction", o->fractions.val, "Share of images for validation")
      ->capture_default_str()
      ->check(in_range(0.0, 0.5));
  cmd->add_option("--test-fraction", o->fractions.test, "Share of images for the held-out test")
      ->capture_default_str()
      ->check(in_range(0.0, 0.5));
  cmd->add_flag("--no-face-crops", (*flags)["no_face_crops"],
                "Train on whole images instead of the run-time crop around the detected face");
  cmd->add_option("--face-model", o->face_model,
                  "Face detector for the crops: a model name (see `maskwatch run --help`) or a YuNet .onnx file");
  cmd->add_flag("--no-calibrate", (*flags)["no_calibrate"], "Do not fit a temperature on the validation split");
  cmd->add_flag("--no-quality-gate", (*flags)["no_quality_gate"],
                "Do not fit the quality gate (every face answered; `eval --conditions --fit-gate` fits one later)");
  auto* aug = "Augmentation";
  cmd->add_option("--rotation", o->augment.rotation_deg, "Max rotation, degrees")
      ->capture_default_str()
      ->group(aug)
      ->check(in_range(0.0, 180.0));
  cmd->add_option("--zoom", o->augment.zoom, "Zoom range (0.15 = ±15 %: the crop margin's jitter)")
      ->capture_default_str()
      ->group(aug)
      ->check(in_range(0.0, 0.9));  // a scale of 1 - zoom stays above 0
  cmd->add_option("--shift", o->augment.shift, "Max shift, fraction of the crop (the face centre's jitter)")
      ->capture_default_str()
      ->group(aug)
      ->check(in_range(0.0, 0.5));
  cmd->add_option("--shear", o->augment.shear_deg, "Max shear, degrees (Keras' shear_range)")
      ->capture_default_str()
      ->group(aug)
      ->check(in_range(0.0, 45.0));
  cmd->add_flag("--no-flip", (*flags)["no_flip"], "No horizontal flips")->group(aug);
  cmd->add_flag("--no-augment", (*flags)["no_augment"], "Train on the images as they are")->group(aug);
  auto& ph = o->augment.photo;
  cmd->add_flag("--no-camera-effects", (*flags)["no_photo"], "No brightness/colour/blur/noise/JPEG/downscale effects")
      ->group(aug);
  cmd->add_option("--brightness", ph.brightness, "Brightness jitter (0.4 = x0.6..1.4)")
      ->capture_default_str()
      ->group(aug)
      ->check(in_range(0.0, 0.9));
  cmd->add_option("--contrast", ph.contrast, "Contrast jitter")
      ->capture_default_str()
      ->group(aug)
      ->check(in_range(0.0, 0.9));
  cmd->add_option("--saturation", ph.saturation, "Saturation jitter")
      ->capture_default_str()
      ->group(aug)
      ->check(in_range(0.0, 1.0));
  cmd->add_option("--gray-p", ph.gray_p, "Probability of grayscale (IR cameras)")
      ->capture_default_str()
      ->group(aug)
      ->check(in_range(0.0, 1.0));
  cmd->add_option("--downscale-p", ph.downscale_p, "Probability of downscale-then-upscale (small faces)")
      ->capture_default_str()
      ->group(aug)
      ->check(in_range(0.0, 1.0));
  cmd->add_option("--blur-p", ph.blur_p, "Probability of Gaussian blur")
      ->capture_default_str()
      ->group(aug)
      ->check(in_range(0.0, 1.0));
  cmd->add_option("--noise-p", ph.noise_p, "Probability of sensor noise")
      ->capture_default_str()
      ->group(aug)
      ->check(in_range(0.0, 1.0));
  cmd->add_option("--jpeg-p", ph.jpeg_p, "Probability of JPEG re-encoding at quality 15-60")
      ->capture_default_str()
      ->group(aug)
      ->check(in_range(0.0, 1.0));
  cmd->add_option("--dim-p", ph.dim_p,
                  "Probability of a dim room: -0.5 to -2.5 EV and sensor noise (sigma 0.01-0.05), in linear light")
      ->capture_default_str()
      ->group(aug)
      ->check(in_range(0.0, 1.0));
  cmd->add_flag("--smooth-noisy,!--no-smooth-noisy", o->smooth_noisy,
                "Smooth grainy augmented crops as the classifier smooths grainy faces at run time (default off: "
                "README \"Honest uncertainty\")")
      ->group(aug);
  cmd->add_flag("--no-dedup", (*flags)["no_dedup"],
                "Do not group near-duplicates before splitting (the test split will leak)");
  cmd->add_option("--limit-per-class", o->limit_per_class, "Use at most N images per class (quick experiments)")
      ->check(in_range(1, 100000000));  // 0 and -5 read as "no limit"
  auto* resume = cmd->add_flag("--resume", o->resume,
                               "Continue the run in --out from its last complete epoch (a complete run is left as it is)");
  // Both at once had been read as --resume, and a mismatch told the user to add the --force given.
  cmd->add_flag("--force", o->force, "Start over even if --out holds a previous run")->excludes(resume);
  cmd->add_option("--stop-after-epochs", o->stop_after_epochs, "Stop (resumable) after N epochs of this run")
      ->group("");
  // An augmentation setting beside the switch that turns it off would be ignored: refused.
  for (const char* name : {"--rotation", "--zoom", "--shift", "--shear", "--no-flip"})
    cmd->get_option("--no-augment")->excludes(name);
  for (const char* name :
       {"--brightness", "--contrast", "--saturation", "--gray-p", "--downscale-p", "--blur-p", "--noise-p", "--jpeg-p",
        "--dim-p"})
    cmd->get_option("--no-camera-effects")->excludes(name);
  add_threads_option(cmd, o->threads);
  cmd->callback([=] {
    setup_training_compute(o->threads);
    auto& f = *flags;
    o->data.clear();
    for (const auto& d : *data) o->data.emplace_back(d);
    o->class_map = parse_class_mappings(*maps);
    const bool default_data = o->data.empty();
    for (const auto& w : *weights) {
      const auto [source, weight] = parse_source_weight(w);
      const auto [at, added] = o->source_weights.emplace(source, weight);
      if (!added && at->second != weight)
        throw CLI::ValidationError("--source-weight", fmt::format("{}: '{}' already has the weight {}", w, source,
                                                                  at->second));
    }
    if (default_data) use_default_training_data(*o);  // after --map and --source-weight: they win
    o->exclude = f["no_exclude"] ? "" : *exclude;
    if (!o->exclude.empty() && !std::filesystem::exists(o->exclude)) {
      if (*exclude != default_exclude_path().string()) throw Error("exclude file not found: " + o->exclude.string());
      o->exclude.clear();  // the default list is optional
    }
    o->out = *out;
    o->backbone = *backbone;
    for (const auto& b : *baselines) o->baseline_models.emplace_back(b);
    o->face_crops = !f["no_face_crops"];
    o->calibrate = !f["no_calibrate"];
    o->quality_gate = !f["no_quality_gate"];
    o->augment.flip = !f["no_flip"];
    o->augment.enabled = !f["no_augment"];
    o->augment.photo.enabled = !f["no_photo"];
    o->dedup = !f["no_dedup"];
    o->fractions.train = 1.0 - o->fractions.val - o->fractions.test;
    if (!(o->fractions.train > 0))
      throw CLI::ValidationError("--val-fraction, --test-fraction",
                                 fmt::format("{} and {} leave no image for training", o->fractions.val,
                                             o->fractions.test));
    o->command_line = g_argv ? join_args(g_argc, g_argv) : "maskwatch train";
    const auto result = [&] {
      const StopSignals stop_signals([](int) { request_training_stop(); });
      return train_mask_model(*o);
    }();
    if (result.already_complete) {
      fmt::print("{} holds a complete run of these options: nothing to resume, its files are left as they are "
                 "(--force trains it again)\n",
                 o->out.string());
      return;
    }
    if (!result.completed) {
      const std::string how = o->stop_after_epochs ? "stopped as asked" : "interrupted";
      fmt::print("{}: the last complete epoch is saved in {}; continue with the same command plus --resume\n", how,
                 o->out.string());
      if (!o->stop_after_epochs) throw Error("training interrupted (resume with --resume)");
      return;
    }
    print_result(*o, result.metrics);
  });
}

}  // namespace maskwatch::app
