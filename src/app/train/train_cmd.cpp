// `maskwatch train`: two-phase transfer learning (see train/trainer.h).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <csignal>

#include "app/train/commands.h"
#include "nn/torch_threads.h"
#include "train/trainer.h"
#include "util/error.h"
#include "util/paths.h"

namespace maskwatch::app {
namespace {
std::string join_args(int argc, char** argv) {
  std::string s = "maskwatch";
  for (int i = 1; i < argc; ++i) s += std::string(" ") + argv[i];
  return s;
}
int g_argc = 0;
char** g_argv = nullptr;
}  // namespace

void remember_command_line(int argc, char** argv) {
  g_argc = argc;
  g_argv = argv;
}

void add_train_command(CLI::App& root) {
  auto o = std::make_shared<TrainOptions>();
  auto data = std::make_shared<std::string>(), out = std::make_shared<std::string>();
  auto backbone = std::make_shared<std::string>(asset_path(kQuantBackbone).string());
  auto no_flip = std::make_shared<bool>(false), no_augment = std::make_shared<bool>(false),
       no_dedup = std::make_shared<bool>(false);
  auto* cmd = root.add_subcommand("train",
                                  "Train the mask classifier: ImageNet MobileNetV2 + head, two phases, then export "
                                  "model.onnx + model.json with metrics, curves and a model card");
  cmd->add_option("--data", *data, "Folder with one sub-folder of images per class")->required();
  cmd->add_option("--out", *out, "Output folder (model, metrics, plots, split, checkpoints)")->required();
  cmd->add_option("--backbone", *backbone, "MobileNetV2 .tflite with ImageNet weights")->capture_default_str();
  cmd->add_option("--epochs", o->epochs, "Phase 1 epochs (backbone frozen)")->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--fine-tune-epochs", o->fine_tune_epochs, "Phase 2 epochs (top blocks unfrozen)")->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--batch", o->batch, "Batch size")->capture_default_str()->check(CLI::Range(1, 1024));
  cmd->add_option("--input-size", o->input_size, "Square input size: a multiple of 32 from 96 to 224")->capture_default_str();
  cmd->add_option("--seed", o->seed, "Seed for split, shuffling, augmentation and initialisation")->capture_default_str();
  cmd->add_option("--lr", o->lr, "Phase 1 Adam learning rate")->capture_default_str();
  cmd->add_option("--fine-tune-lr", o->fine_tune_lr, "Phase 2 Adam learning rate")->capture_default_str();
  cmd->add_option("--fine-tune-from-block", o->fine_tune_from_block,
                  "Phase 2 trains inverted-residual blocks from this one (0..16) and the final conv")->capture_default_str();
  cmd->add_option("--patience", o->patience, "Stop a phase after N epochs without val-loss improvement (0 = off)")->capture_default_str();
  cmd->add_option("--val-fraction", o->fractions.val, "Share of images for validation")->capture_default_str()->check(CLI::Range(0.0, 0.5));
  cmd->add_option("--test-fraction", o->fractions.test, "Share of images for the held-out test")->capture_default_str()->check(CLI::Range(0.0, 0.5));
  cmd->add_option("--rotation", o->augment.rotation_deg, "Augmentation: max rotation, degrees")->capture_default_str();
  cmd->add_option("--zoom", o->augment.zoom, "Augmentation: zoom range (0.15 = ±15 %)")->capture_default_str();
  cmd->add_option("--shift", o->augment.shift, "Augmentation: max shift, fraction of width/height")->capture_default_str();
  cmd->add_option("--shear", o->augment.shear_deg, "Augmentation: max shear, degrees (Keras' shear_range)")->capture_default_str();
  cmd->add_flag("--no-flip", *no_flip, "Augmentation: no horizontal flips");
  cmd->add_flag("--no-augment", *no_augment, "Train on the images as they are");
  cmd->add_flag("--no-dedup", *no_dedup, "Do not group near-duplicates before splitting (the test split will leak)");
  cmd->add_option("--limit-per-class", o->limit_per_class, "Use at most N images per class (quick experiments)");
  cmd->add_flag("--resume", o->resume, "Continue the run in --out from its last complete epoch");
  cmd->add_flag("--force", o->force, "Start over even if --out holds a previous run");
  cmd->add_option("--stop-after-epochs", o->stop_after_epochs, "Stop (resumable) after N epochs of this run")->group("");
  cmd->add_option("--threads", o->threads, "CPU threads (0 = all cores)")->capture_default_str();
  cmd->callback([=] {
    set_training_threads(o->threads);
    o->data = *data;
    o->out = *out;
    o->backbone = *backbone;
    o->augment.flip = !*no_flip;
    o->augment.enabled = !*no_augment;
    o->dedup = !*no_dedup;
    o->fractions.train = 1.0 - o->fractions.val - o->fractions.test;
    o->command_line = g_argv ? join_args(g_argc, g_argv) : "maskwatch train";
    std::signal(SIGINT, [](int) { request_training_stop(); });
    const auto result = train_mask_model(*o);
    std::signal(SIGINT, SIG_DFL);
    if (!result.completed) {
      const std::string how = o->stop_after_epochs ? "stopped as asked" : "interrupted";
      fmt::print("{}: the last complete epoch is saved in {}; continue with the same command plus --resume\n", how,
                 o->out.string());
      if (!o->stop_after_epochs) throw Error("training interrupted (resume with --resume)");
      return;
    }
    const auto& t = result.metrics["test"];
    fmt::print("\nmodel:    {}/model.onnx (+ model.json, MODEL_CARD.md)\n", o->out.string());
    fmt::print("test:     accuracy {:.2f}% on {} images, balanced {:.2f}%\n", 100 * t["accuracy"].get<double>(),
               t["n"].get<int>(), 100 * t["balanced_accuracy"].get<double>());
    fmt::print("time:     phase 1 {:.0f} s, phase 2 {:.0f} s, whole run {:.0f} s\n",
               result.metrics["timing"]["phase1_seconds"].get<double>(),
               result.metrics["timing"]["phase2_seconds"].get<double>(),
               result.metrics["timing"]["wall_seconds_this_run"].get<double>());
    fmt::print("plots:    {0}/curves.png {0}/confusion.png\n", o->out.string());
  });
}

}  // namespace maskwatch::app
