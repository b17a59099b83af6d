// `maskwatch-train`: the training executable (LibTorch). `maskwatch train|audit|imagenet|bench`
// execs it with the same arguments.
#include "app/cli.h"
#include "app/train/commands.h"
#include "util/threads.h"

int main(int argc, char** argv) {
  maskwatch::reexec_with_openmp_spin_default(argv);  // first: libgomp is already loaded
  CLI::App app{"maskwatch: training, backbone check and benchmarks (the LibTorch half of maskwatch)"};
  app.name("maskwatch");
  maskwatch::app::add_train_command(app);
  maskwatch::app::add_face_tune_command(app);
  maskwatch::app::add_audit_command(app);
  maskwatch::app::add_imagenet_command(app);
  maskwatch::app::add_bench_command(app);
  maskwatch::app::remember_command_line(argc, argv);
  return maskwatch::app::cli_main(app, argc, argv);
}
