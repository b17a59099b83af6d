// `maskwatch ensemble`: writes an ensemble's file (model/model_meta.h) naming several models of
// one recipe and split, whose probabilities the classifier then averages (with --cascade only for
// the faces the first model is unsure of). Its quality gate is fitted afterwards on the
// ensemble's answers (`eval --conditions --fit-gate`).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "app/cli.h"
#include "app/commands.h"
#include "model/model_meta.h"
#include "util/error.h"
#include "util/files.h"
#include "util/json_io.h"
#include "vision/mask_classifier.h"

namespace maskwatch::app {

namespace {
using json = nlohmann::json;

// What a member's sidecar says of its training, kept in the ensemble for the model card.
json member_summary(const std::string& file, const json& training) {
  json s = {{"onnx", file}};
  for (const char* key : {"data_manifest_sha256", "best_epoch", "train_seconds", "val", "test"})
    if (training.contains(key)) s[key] = training[key];
  if (training.contains("recipe") && training["recipe"].contains("seed")) s["seed"] = training["recipe"]["seed"];
  return s;
}

void write_ensemble(const std::vector<std::string>& models, const std::filesystem::path& out, bool force,
                    double cascade) {
  if (out.extension() != ".json") throw Error(fmt::format("--out {}: an ensemble's file ends in .json", out.string()));
  std::error_code ec;
  // Members are named relative to the folder the file is read from; written through a link the
  // file would land in another folder than the names were worked out for.
  if (std::filesystem::is_symlink(std::filesystem::symlink_status(out, ec)))
    throw Error(fmt::format("--out {} is a symbolic link: give the path of the file itself (members are named "
                            "relative to its folder)",
                            out.string()));
  // Never over a model's sidecar (member or not): that model would no longer load.
  if (auto onnx = out; std::filesystem::exists(onnx.replace_extension(".onnx"), ec))
    throw Error(fmt::format("--out {} is the sidecar of {}: it would be overwritten", out.string(), onnx.string()));
  if (std::filesystem::exists(out, ec)) {
    bool is_ensemble = false;
    try {
      is_ensemble = ModelMeta::load(out).is_ensemble();
    } catch (const Error&) {}
    if (!is_ensemble)
      throw Error(fmt::format("--out {} exists and is not an ensemble's file: not overwritten", out.string()));
    if (!force)  // its fitted quality gate would be lost
      throw Error(fmt::format("--out {} exists (an ensemble): give --force to replace it", out.string()));
  }
  const auto out_abs = std::filesystem::absolute(out).lexically_normal();
  ModelMeta ens;
  json members_info = json::array();
  json first_split;
  for (const auto& m : models) {
    const std::filesystem::path path(m);
    if (path.extension() != ".onnx")
      throw Error(fmt::format("{}: members are model .onnx files (with model.json beside them)", m));
    if (std::filesystem::absolute(sidecar_path(path)).lexically_normal() == out_abs)
      throw Error(fmt::format("--out {} is the sidecar of member {}: it would be overwritten", out.string(), m));
    MaskClassifier check(path);  // loads and checks the member (sidecar, sha256, graph, probe)
    const ModelMeta meta = ModelMeta::load(sidecar_path(path));
    for (const auto& e : ens.members)
      if (e.sha256 == meta.onnx_sha256) throw Error(fmt::format("{} is given twice (same sha256)", m));
    // The split as the sidecar records it: images per subset, class and source (not which images).
    json split = meta.training.value("split", json::object());
    split =
        json{{"counts", split.value("counts", json())}, {"counts_by_source", split.value("counts_by_source", json())}};
    if (split["counts"].is_null())
      throw Error(fmt::format("{}: its model.json records no split (training.split), so it cannot be checked against "
                              "the other members': train it with `maskwatch train --split`",
                              m));
    if (ens.members.empty()) {
      ens.classes = meta.classes;
      ens.input_size = meta.input_size;
      ens.crop = meta.crop;
      first_split = split;
      // The gate fit checks a split file against this (eval --fit-gate): the first member's run.
      if (meta.training.contains("data_manifest_sha256"))
        ens.training["data_manifest_sha256"] = meta.training["data_manifest_sha256"];
    } else {
      if (meta.classes != ens.classes || meta.input_size != ens.input_size || meta.crop != ens.crop)
        throw Error(fmt::format("{}: classes, input size or crop differ from {}'s", m, models.front()));
      // Averaging models trained on different splits would let one member's training images
      // into the others' validation, where the ensemble's gate is fitted.
      if (split != first_split)
        throw Error(
            fmt::format("{} was trained on another split than {} (images per subset, class and source "
                        "differ): train every member with the same --split",
                        m, models.front()));
    }
    const auto rel = std::filesystem::relative(std::filesystem::absolute(path), out_abs.parent_path(), ec);
    if (ec || rel.empty()) throw Error(fmt::format("{}: cannot be named relative to {}", m, out.string()));
    ens.members.push_back({rel.string(), meta.onnx_sha256});
    members_info.push_back(member_summary(rel.string(), meta.training));
  }
  ens.cascade_threshold = cascade;
  ens.training["ensemble_of"] = members_info;
  ens.training["split"] = first_split;
  ens.save(out);
}
}  // namespace

void add_ensemble_command(CLI::App& root) {
  struct Opts {
    std::vector<std::string> models;
    std::string out;
    bool force = false;
    double cascade = 0;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = root.add_subcommand("ensemble",
                                  "Average several models of one recipe and split: writes an ensemble's .json that "
                                  "--model takes wherever a model.onnx "
                                  "goes (each face then costs one forward per member, or with --cascade one for the "
                                  "faces the first model is sure of)");
  cmd->add_option("models", o->models,
                  "Two or more model.onnx files (model.json beside each) trained with the same --split (checked by "
                  "their images per subset, class and source), classes, input size and crop; that they share a "
                  "recipe is up to you. List first the model whose run made the split: `eval --fit-gate` checks the "
                  "split file against its data manifest")
      ->required()
      ->expected(2, static_cast<int>(kMaxEnsembleMembers));
  cmd->add_option("--out", o->out,
                  "The ensemble's file (.json); members are named relative to its folder, so keep them beside it")
      ->required();
  cmd->add_flag("--force", o->force,
                "Replace an existing ensemble's file (its quality gate is lost); a model's sidecar or any other file "
                "is never replaced");
  cmd->add_option("--cascade", o->cascade,
                  "0 (default): every face runs every member. A probability above 0.5, e.g. 0.995: the first model "
                  "answers alone when its top probability reaches it, and only the faces it is less sure of run the "
                  "others (cheap enough for video). Choose it on validation: write the ensemble with and without, "
                  "`eval --subset val --json` each, and take the lowest value whose labels and sure-and-wrong "
                  "answers (>= 90 %) are the full mean's")
      ->check(in_range(0.0, 1.0))  // checks run in turn, the first failure is said (`&` said both)
      ->check(checked_by(
          [](const std::string& v) {
            if (const double p = std::stod(v); !(p == 0 || ModelMeta::valid_cascade_threshold(p)))
              throw Error(fmt::format("{}: give 0 (off) or {}", v, ModelMeta::kCascadeRule));
          },
          ""));
  cmd->callback([o] {
    check_output_path(o->out, "ensemble file");
    write_ensemble(o->models, o->out, o->force, o->cascade);
    fmt::print(
        "ensemble of {} models written to {}\nIt has no quality gate yet (every face answered): fit one on the "
        "ensemble's answers with\n  maskwatch eval --conditions --fit-gate --model {} --split SPLIT.json --subset val "
        "--data ... (the members' training data and --map)\n",
        o->models.size(), o->out, o->out);
  });
}

}  // namespace maskwatch::app
