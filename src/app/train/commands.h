// Subcommands of the `maskwatch-train` executable (they need LibTorch). The runtime
// `maskwatch` hands these over with exec (app/cli.h), so users type `maskwatch train`.
#pragma once
#include <CLI/CLI.hpp>

#include "app/cli.h"

namespace maskwatch::app {

void add_imagenet_command(CLI::App& root);
void add_bench_command(CLI::App& root);
void add_train_command(CLI::App& root);
void add_audit_command(CLI::App& root);
void add_face_tune_command(CLI::App& root);

// The train command records the exact command line in the model card.
void remember_command_line(int argc, char** argv);

}  // namespace maskwatch::app
