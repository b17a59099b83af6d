// `maskwatch`: the runtime executable (no LibTorch). CLI11 wiring only; training commands
// are handed to `maskwatch-train` (app/cli.h).
#include <cstdio>
#include <fmt/format.h>

#include "app/cli.h"
#include "app/commands.h"
#include "app/serve/commands.h"
#include "util/error.h"

int main(int argc, char** argv) {
  try {
    maskwatch::app::exec_training_binary_if_needed(argc, argv);
  } catch (const maskwatch::Error& e) {
    std::fprintf(stderr, "maskwatch: error: %s\n", e.what());
    return 1;
  }
  CLI::App app{"maskwatch: real-time face mask detection (train, export, detect, evaluate, serve, benchmark)"};
  maskwatch::app::add_run_command(app);
  maskwatch::app::add_detect_command(app);
  maskwatch::app::add_eval_command(app);
  maskwatch::app::add_ensemble_command(app);
  maskwatch::app::add_serve_command(app);
  maskwatch::app::add_config_command(app);
  maskwatch::app::add_bench_serve_command(app);
  maskwatch::app::add_bench_pipeline_command(app);
  // Listed in --help; the hand-over above runs them in maskwatch-train, whose options --help-all
  // cannot list from here: each says where they are. An install without maskwatch-train (the
  // site's package) does not offer commands it cannot run: the footer says where they went.
  const bool can_train = maskwatch::app::training_binary_present();
  const auto training = [&](const char* name, const char* what) {
    app.add_subcommand(name, fmt::format("{} (options: maskwatch {} --help)", what, name))
        ->allow_extras()
        ->group(can_train ? "Subcommands" : "");
  };
  if (!can_train)
    app.footer(
        "Training commands (train, train-faces, audit, imagenet, bench) are not in this install: they need the "
        "training executable maskwatch-train beside maskwatch (scripts/setup.sh builds it; the package leaves it "
        "out).");
  training("train", "Train the mask classifier (transfer learning from ImageNet MobileNetV2)");
  training("train-faces", "Fine-tune the face detector on annotated scenes (Pascal VOC)");
  training("audit", "Find likely label errors in training data (out-of-fold predictions)");
  training("imagenet", "Check the backbone import on ImageNet images");
  training("bench", "Measure speed and print the tables quoted in README.md");
  return maskwatch::app::cli_main(app, argc, argv);
}
