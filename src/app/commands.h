// Each subcommand registers itself on the root CLI11 app; its callback does the work and
// throws maskwatch::Error for anything the user should fix (main turns that into exit 1).
#pragma once
#include <CLI/CLI.hpp>

namespace maskwatch::app {

void add_imagenet_command(CLI::App& root);
void add_bench_command(CLI::App& root);
void add_train_command(CLI::App& root);
void add_eval_command(CLI::App& root);
void add_run_command(CLI::App& root);
void add_detect_command(CLI::App& root);

// The train command records the exact command line in the model card.
void remember_command_line(int argc, char** argv);

}  // namespace maskwatch::app
