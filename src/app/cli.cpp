#include "app/cli.h"

#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <opencv2/core/utils/logger.hpp>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>

#include "model/mobilenet_v2_spec.h"
#include "model/model_meta.h"
#include "util/error.h"
#include "util/log_text.h"
#include "util/paths.h"
#include "util/threads.h"

namespace maskwatch::app {

const std::vector<std::string>& training_command_names() {
  static const std::vector<std::string> names = {"train", "train-faces", "audit", "imagenet", "bench"};
  return names;
}

bool training_binary_present() { return access(sibling_executable(kTrainingBinary).c_str(), X_OK) == 0; }

void exec_training_binary_if_needed(int argc, char** argv) {
  if (argc < 2) return;
  const auto& names = training_command_names();
  if (std::find(names.begin(), names.end(), argv[1]) == names.end()) return;
  const auto binary = sibling_executable(kTrainingBinary);
  if (!training_binary_present())
    throw Error(fmt::format("'{}' needs the training executable {}, which is missing (build it with scripts/setup.sh)",
                            argv[1], binary.string()));
  std::vector<char*> args(argv, argv + argc);
  args.push_back(nullptr);
  set_openmp_spin_default();  // before the exec: maskwatch-train then need not exec itself again
  execv(binary.c_str(), args.data());
  throw Error(fmt::format("cannot start {}: {}", binary.string(), std::strerror(errno)));
}

CLI::Option* add_threads_option(CLI::App* cmd, int& threads, const std::string& help) {
  const int most = 4 * resolve_threads(0);
  return cmd->add_option("--threads", threads, help + " (image work uses at most one per core)")
      ->capture_default_str()
      ->check(in_range(0, most));
}

namespace {
// " (missing)" for a model file that is not there, " (its model.json missing)" for one without
// its sidecar (every command refuses it then): --version reads the sidecars only (hashing the
// files would make it slow), but a lost file is worth saying.
std::string missing_mark(const std::filesystem::path& onnx) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(onnx, ec)) return " (missing)";
  return std::filesystem::is_regular_file(sidecar_path(onnx), ec) ? "" : " (its model.json missing)";
}

// "<path>: sha256 <hex>", or for an ensemble its members and theirs.
std::string describe_model(const std::filesystem::path& path) {
  try {
    const bool ensemble = path.extension() == ".json";
    const auto meta = ModelMeta::load(ensemble ? path : sidecar_path(path));
    if (!meta.is_ensemble()) return fmt::format("{}: sha256 {}{}", path.string(), meta.onnx_sha256, missing_mark(path));
    std::string members;
    for (const auto& m : meta.members)
      members += fmt::format("{}{} (sha256 {}){}", members.empty() ? "" : ", ", m.onnx, m.sha256,
                             missing_mark(member_path(path, m)));
    const std::string cascade =
        meta.cascade_threshold > 0
            ? fmt::format("; the first alone where its top probability >= {}", meta.cascade_threshold)
            : "";
    return fmt::format("{}: ensemble of {}{}: {}", path.string(), meta.members.size(), cascade, members);
  } catch (const std::exception& e) {
    return fmt::format("{}: not readable ({})", path.string(), e.what());
  }
}
}  // namespace

std::string version_text() {
  return fmt::format("maskwatch {} (git {})\nmodel {}", MASKWATCH_VERSION, MASKWATCH_GIT_COMMIT,
                     describe_model(default_classifier_path()));
}

namespace {

// Every option and argument that takes a value refuses an empty one: `--data ''` or
// `--json "$UNSET"` would otherwise read as "not given" and fall back to a default (another
// folder, no JSON written) without a word. Numbers refuse it in in_range already.
void refuse_empty_values(CLI::App& app) {
  const auto non_empty = [](bool has_default) {
    return CLI::Validator(
        [has_default](std::string& value) {
          if (!value.empty()) return std::string();
          return std::string(has_default ? "an empty value (leave the option out to get its default)"
                                         : "an empty value");
        },
        "");
  };
  for (CLI::Option* opt : app.get_options([](const CLI::Option* o) { return o->get_type_size() > 0; }))
    opt->check(non_empty(!opt->get_required() && opt->nonpositional()));
  for (CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) refuse_empty_values(*sub);
}

}  // namespace

void check_input_size_option(CLI::Option* option) {
  option->check(checked_by(
      [](const std::string& v) {
        int size = 0;
        if (!CLI::detail::lexical_cast(v, size)) throw Error(fmt::format("Value {} is not a whole number", v));
        check_input_size(size);  // "input size N not supported: use a multiple of 32 from 96 to 224"
      },
      "a multiple of 32 from 96 to 224"));
}

int cli_main(CLI::App& app, int argc, char** argv) {
  // A write beyond the file-size limit (ulimit -f) then fails with EFBIG, which we report
  // and survive (serve keeps history in memory), instead of killing the process.
  std::signal(SIGXFSZ, SIG_IGN);
  // FFmpeg's own log lines would break the one-line error promise; our errors say what failed.
  setenv("OPENCV_FFMPEG_LOGLEVEL", "-8", /*overwrite=*/0);
  // Same for OpenCV's WARN/ERROR lines (camera probing, DNN shape errors): we report the
  // failure in our words. OPENCV_LOG_LEVEL=INFO brings them back for debugging.
  if (!std::getenv("OPENCV_LOG_LEVEL")) cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_SILENT);
  // Logs and warnings go to stderr; stdout carries results only.
  spdlog::set_default_logger(spdlog::stderr_color_mt("maskwatch"));
  install_log_format();  // "[time] level: message", the message redacted and escaped
  app.require_subcommand(1);
  app.set_version_flag("--version", version_text,
                       "Print the version, git commit and the default model (MASKWATCH_MODEL, else the shipped "
                       "ensemble) with the sha256 of each file as its model.json records it (commands check the "
                       "files against them when they load), and exit");
  app.set_help_all_flag("--help-all", "Show help for every subcommand");
  refuse_empty_values(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // CLI11 says "A subcommand is required" for a mistyped command name: name it instead.
    if (argc > 1 && argv[1][0] != '-') {
      std::string known;
      bool found = false;
      for (const auto* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
        known += (known.empty() ? "" : ", ") + sub->get_name();
        found = found || sub->get_name() == argv[1];
      }
      if (!found) {
        std::fprintf(stderr, "maskwatch: usage error: unknown command '%s' (commands: %s; see --help)\n", argv[1],
                     known.c_str());
        return 2;
      }
    }
    std::fprintf(stderr, "maskwatch: usage error: %s (see --help)\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::string msg = redact_url(e.what());
    // Keep the promise of one line: OpenCV and LibTorch messages can span several.
    for (auto& c : msg)
      if (c == '\n' || c == '\r') c = ' ';
    std::fprintf(stderr, "maskwatch: error: %s\n", msg.c_str());
    return 1;
  }
  // Results go to standard output: one that could not be written there (a full disk,
  // /dev/full) is lost, not a success.
  errno = 0;
  std::cout.flush();
  if (std::fflush(stdout) != 0 || std::ferror(stdout) || !std::cout) {
    std::fprintf(stderr, "maskwatch: error: the results could not be written to standard output%s%s\n",
                 errno ? ": " : "", errno ? std::strerror(errno) : "");
    return 1;
  }
  return 0;
}

}  // namespace maskwatch::app
