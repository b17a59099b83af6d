// Service subcommands (library maskwatch_serve): `serve` and `config check`.
#pragma once
#include <CLI/CLI.hpp>

namespace maskwatch::app {
void add_serve_command(CLI::App& root);
void add_config_command(CLI::App& root);
}  // namespace maskwatch::app
