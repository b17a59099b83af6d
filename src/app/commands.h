// Runtime subcommands (no LibTorch). Each registers itself on the root CLI11 app; its
// callback does the work and throws maskwatch::Error for anything the user should fix
// (cli_main turns that into exit 1). Training commands: app/train/commands.h.
#pragma once
#include <CLI/CLI.hpp>

#include "app/cli.h"

namespace maskwatch::app {

void add_eval_command(CLI::App& root);
void add_run_command(CLI::App& root);
void add_detect_command(CLI::App& root);
void add_ensemble_command(CLI::App& root);
// Hidden: one end-to-end pipeline benchmark case as JSON on stdout (run by `bench`, so the
// case is measured in the runtime executable, without LibTorch loaded).
void add_bench_pipeline_command(CLI::App& root);

}  // namespace maskwatch::app
