// maskwatch CLI: wiring only. Exit codes: 0 success, 2 bad usage, 1 failure (one line on stderr).
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <exception>

#include "app/commands.h"
#include "util/error.h"

int main(int argc, char** argv) {
  // FFmpeg's own log lines would break the one-line error promise; our errors say what failed.
  setenv("OPENCV_FFMPEG_LOGLEVEL", "-8", /*overwrite=*/0);
  // Logs and warnings go to stderr; stdout carries results only.
  spdlog::set_default_logger(spdlog::stderr_color_mt("maskwatch"));
  spdlog::set_pattern("[%H:%M:%S] %^%l%$: %v");
  CLI::App app{"maskwatch: real-time face mask detection (train, export, detect, evaluate, benchmark)"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show help for every subcommand");
  maskwatch::app::add_imagenet_command(app);
  maskwatch::app::add_train_command(app);
  maskwatch::app::add_eval_command(app);
  maskwatch::app::add_detect_command(app);
  maskwatch::app::add_run_command(app);
  maskwatch::app::add_bench_command(app);
  maskwatch::app::remember_command_line(argc, argv);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "maskwatch: usage error: %s (see --help)\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::string msg = e.what();
    // Keep the promise of one line: OpenCV and LibTorch messages can span several.
    for (auto& c : msg)
      if (c == '\n' || c == '\r') c = ' ';
    std::fprintf(stderr, "maskwatch: error: %s\n", msg.c_str());
    return 1;
  }
  return 0;
}
