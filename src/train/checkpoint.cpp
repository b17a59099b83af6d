#include "train/checkpoint.h"

#include <sstream>

#include "util/error.h"
#include "util/files.h"

namespace maskwatch {
namespace {

void write_archive(const std::filesystem::path& path, torch::serialize::OutputArchive& archive) {
  std::ostringstream out;
  archive.save_to(out);
  write_file_atomic(path, out.str());
}

torch::serialize::InputArchive read_archive(const std::filesystem::path& path) {
  const auto bytes = read_file_bytes(path, "checkpoint");
  std::istringstream in(std::string(bytes.begin(), bytes.end()));
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(in);
  } catch (const std::exception& e) {
    throw Error("checkpoint " + path.string() + " is unreadable (truncated?); start again with --force instead of --resume");
  }
  return archive;
}

torch::Tensor scalar(double v) { return torch::tensor(v, torch::kFloat64); }

}  // namespace

void save_checkpoint(const std::filesystem::path& path, MaskNet& net, const torch::optim::Optimizer& opt,
                     const LoopState& s) {
  torch::serialize::OutputArchive root, model, optimizer;
  net->save(model);
  opt.save(optimizer);
  root.write("model", model);
  root.write("optimizer", optimizer);
  root.write("phase", scalar(s.phase));
  root.write("next_epoch", scalar(s.next_epoch));
  root.write("best_val_loss", scalar(s.best_val_loss));
  root.write("best_epoch", scalar(s.best_epoch));
  root.write("bad_epochs", scalar(s.bad_epochs));
  root.write("phase1_seconds", scalar(s.phase_seconds[0]));
  root.write("phase2_seconds", scalar(s.phase_seconds[1]));
  root.write("recipe_sha256", c10::IValue(s.recipe_sha256));
  write_archive(path, root);
}

LoopState read_loop_state(const std::filesystem::path& path) {
  auto root = read_archive(path);
  LoopState s;
  try {
    auto get = [&](const char* key) {
      torch::Tensor t;
      root.read(key, t);
      return t.item<double>();
    };
    s.phase = static_cast<int>(get("phase"));
    s.next_epoch = static_cast<int>(get("next_epoch"));
    s.best_val_loss = get("best_val_loss");
    s.best_epoch = static_cast<int>(get("best_epoch"));
    s.bad_epochs = static_cast<int>(get("bad_epochs"));
    s.phase_seconds[0] = get("phase1_seconds");
    s.phase_seconds[1] = get("phase2_seconds");
    c10::IValue recipe;
    root.read("recipe_sha256", recipe);
    s.recipe_sha256 = recipe.toStringRef();
  } catch (const std::exception&) {
    throw Error("checkpoint " + path.string() + " lacks training state; start again with --force instead of --resume");
  }
  return s;
}

void load_checkpoint(const std::filesystem::path& path, MaskNet& net, torch::optim::Optimizer* opt) {
  auto root = read_archive(path);
  torch::serialize::InputArchive model, optimizer;
  try {
    root.read("model", model);
    net->load(model);
    if (opt) {
      root.read("optimizer", optimizer);
      opt->load(optimizer);
    }
  } catch (const std::exception& e) {
    throw Error("checkpoint " + path.string() + " does not fit this model: " + std::string(e.what()).substr(0, 200));
  }
}

void save_weights(const std::filesystem::path& path, MaskNet& net) {
  torch::serialize::OutputArchive root;
  net->save(root);
  write_archive(path, root);
}

void load_weights(const std::filesystem::path& path, MaskNet& net) {
  auto root = read_archive(path);
  try {
    net->load(root);
  } catch (const std::exception& e) {
    throw Error("weights " + path.string() + " do not fit this model");
  }
}

}  // namespace maskwatch
