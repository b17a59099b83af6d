// What both executables share around CLI11: logging to stderr, exit codes (0 success,
// 2 bad usage, 1 failure with one line on stderr) and the training-command hand-over.
#pragma once
#include <CLI/CLI.hpp>

#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

namespace maskwatch::app {

// CLI::Range(lo, hi) for every number option: CLI11's own lets "nan" through (NaN fails both
// comparisons), which then reaches OpenCV as an assertion or silently freezes a timer. Same
// help text as CLI::Range.
template <typename T>
CLI::Validator in_range(T lo, T hi) {
  const CLI::Validator range = CLI::Range(lo, hi);
  return CLI::Validator(
      [range](std::string& value) -> std::string {
        if (value.empty()) return "an empty value is not a number";
        // CLI::Range says "not in range" of a value that is no number at all ("1e3" for a
        // whole number, "0.5abc"): said as it is.
        double number = 0;
        if (!CLI::detail::lexical_cast(value, number)) return "Value " + value + " is not a number";
        if (!std::isfinite(number)) return "Value " + value + " is not a finite number";
        if constexpr (std::is_integral_v<T>) {
          long long whole = 0;
          const bool digits = value.find_first_not_of("+-0123456789") == std::string::npos;
          const size_t first = value.find_first_not_of("+-");
          if (digits && first + 1 < value.size() && value[first] == '0')  // CLI11 reads it as octal
            return "Value " + value + " has a leading zero: write it without";
          if (!CLI::detail::lexical_cast(value, whole) && !digits)  // (digits only: too large, said below)
            return "Value " + value + " is not a whole number";
        }
        return range(value);
      },
      range.get_description());
}

// A validator from a check that throws (an Error from the library's own parser of the value):
// its message is a usage error (exit 2), before any work, not a failure (exit 1) after loading.
template <typename Check>
CLI::Validator checked_by(Check check, std::string description) {
  return CLI::Validator(
      [check](std::string& value) -> std::string {
        try {
          check(value);
        } catch (const std::exception& e) {
          return e.what();
        }
        return {};
      },
      std::move(description));
}

// A classifier input size (a multiple of 32 from 96 to 224, as check_input_size says), a usage
// error otherwise. For train, audit and bench alike.
void check_input_size_option(CLI::Option* option);

// Parses and runs the chosen subcommand; returns the process exit code.
int cli_main(CLI::App& app, int argc, char** argv);

// Commands that need LibTorch and live in the `maskwatch-train` executable.
const std::vector<std::string>& training_command_names();

// Whether `maskwatch-train` is beside this executable (a site's package leaves it out).
bool training_binary_present();

// When argv names a training command, replaces this process with `maskwatch-train` (beside
// this executable) and the same arguments. Returns only if argv names no training command;
// throws Error when the training executable is missing.
void exec_training_binary_if_needed(int argc, char** argv);

// `--version`: version, the git commit it was built from, and the default model's sha256 (from
// its sidecar; "missing" or the reason when it cannot be read).
std::string version_text();

// The one --threads option of every command: 0 = all cores, else 1..4x the cores (more only
// thrashes; a negative count is a usage error, not "all cores").
CLI::Option* add_threads_option(CLI::App* cmd, int& threads, const std::string& help = "CPU threads (0 = all cores)");

}  // namespace maskwatch::app
