// `maskwatch bench-pipeline` (hidden): one end-to-end case of the pipeline benchmark, printed
// as JSON. `maskwatch bench` runs it as a child process so the runtime executable is what
// gets measured (its start-up, its memory), not the training executable.
#include <fmt/format.h>

#include "app/cli.h"
#include "app/commands.h"
#include "perf/pipeline_bench.h"

namespace maskwatch::app {

void add_bench_pipeline_command(CLI::App& root) {
  auto o = std::make_shared<PipelineBenchOptions>();
  auto model = std::make_shared<std::string>(), clip = std::make_shared<std::string>();
  auto* cmd = root.add_subcommand("bench-pipeline", "One pipeline benchmark case as JSON (used by bench)");
  cmd->group("");  // hidden from --help
  cmd->add_option("--model", *model, "Mask model")->required();
  cmd->add_option("--clip", *clip, "Webcam clip the test frames come from")->required();
  cmd->add_option("--faces", o->faces, "1 or 4")->check(CLI::IsMember({1, 4}));
  cmd->add_flag("--decode", o->decode, "Decode the frames from an .mp4 file");
  cmd->add_option("--frames", o->frames, "Frames to time")->check(in_range(1, 100000));
  cmd->add_option("--reclassify-after", o->reclassify_after_s, "Classifier schedule (0 = every face, every frame)")
      ->check(in_range(0.0, 10.0));
  add_threads_option(cmd, o->threads);
  cmd->callback([o, model, clip] {
    o->model = *model;
    o->clip = *clip;
    fmt::print("{}\n", nlohmann::json(bench_pipeline(*o)).dump());
  });
}

}  // namespace maskwatch::app
