// Service subcommands (library maskwatch_serve): `serve` and `config check`.
#pragma once
#include <CLI/CLI.hpp>

#include "app/cli.h"

namespace maskwatch::app {
void add_serve_command(CLI::App& root);
void add_config_command(CLI::App& root);
// Hidden: the service under load (README table); `bench --serve` runs it.
void add_bench_serve_command(CLI::App& root);
}  // namespace maskwatch::app
