// `maskwatch train-faces`: fine-tune the 2023 YuNet face detector on annotated scenes (see
// train/face_tuner.h).
#include <fmt/format.h>

#include "app/cli.h"
#include "app/train/commands.h"
#include "data/split_file.h"
#include "eval/voc.h"
#include "nn/torch_setup.h"
#include "train/face_tuner.h"
#include "util/error.h"
#include "util/files.h"
#include "util/progress.h"
#include "vision/face_detector.h"
#include "vision/yunet_2023.h"

namespace maskwatch::app {
namespace {

// Whether a file is an ONNX graph with the 2023 YuNet outputs (what train-faces starts from and
// writes). A file that cannot be read says why.
bool is_yunet_2023(const std::filesystem::path& path) {
  const auto bytes = read_file_bytes(path, "face model");
  try {
    return Yunet2023::has_2023_outputs(
        cv::dnn::readNetFromONNX(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  } catch (const cv::Exception&) {
    return false;  // not ONNX at all
  }
}

// --out is checked before any work: it had been written over the split file, a scene's image
// or annotation and a trained mask classifier, exit 0.
void check_tuned_model_path(const std::filesystem::path& out, const FaceTuneOptions& o, const std::string& split) {
  if (lower_extension(out) != ".onnx")
    throw Error(fmt::format("--out {}: a face model is an .onnx file (as --face-model takes it)", out.string()));
  std::vector<std::filesystem::path> inputs = {o.base_model};
  if (!split.empty()) inputs.emplace_back(split);
  InputFiles(inputs).refuse_overwriting(out, "--out");
  refuse_output_inside(out, o.scenes, "--out", "the scenes' images and annotations are there");
  std::error_code ec;
  if (std::filesystem::is_regular_file(out, ec) && !is_yunet_2023(out))
    throw Error(fmt::format("--out {} exists and is not a 2023 YuNet face model: not overwritten (remove it or "
                            "choose another name)",
                            out.string()));
}

}  // namespace

void add_face_tune_command(CLI::App& root) {
  auto o = std::make_shared<FaceTuneOptions>();
  auto scenes = std::make_shared<std::string>(), out = std::make_shared<std::string>();
  auto base = std::make_shared<std::string>("yunet-n"), hold_out = std::make_shared<std::string>("none");
  auto split = std::make_shared<std::string>();
  auto threads = std::make_shared<int>(0);
  auto* cmd = root.add_subcommand(
      "train-faces",
      "Fine-tune the 2023 YuNet face detector on annotated scenes (Pascal VOC), so it finds the faces and boxes "
      "the annotators labelled; writes an ONNX with the same graph for --face-model");
  cmd->add_option("--scenes", *scenes, "Folder with annotations/*.xml and images/")->required();
  cmd->add_option("--out", *out, "The fine-tuned face model (.onnx)")->required();
  cmd->add_option("--base", *base, "The 2023 YuNet to start from: yunet-n, yunet-s or a path")->capture_default_str();
  cmd->add_option("--hold-out", *hold_out,
                  "Scenes not trained on: none, odd or even (by sorted annotation name; `eval --scenes --fit-boxes` "
                  "scores the odd ones)")
      ->capture_default_str()
      ->check(CLI::IsMember({"none", "odd", "even"}));
  cmd->add_option("--split", *split,
                  "Also hold out the scenes whose classifier crops are all in this split.json's test subset (the "
                  "scenes `eval --scenes --split` reports as unseen)");
  cmd->add_option("--width", o->width, "Scenes are scaled to this width, as the detector's --detect-width")
      ->capture_default_str()
      ->check(in_range(64, 2048));
  cmd->add_option("--canvas", o->canvas, "Side of the square training input (a multiple of 32)")
      ->capture_default_str()
      ->check(in_range(64, 2048));
  cmd->add_option("--epochs", o->epochs, "Passes over the scenes")->capture_default_str()->check(in_range(1, 500));
  cmd->add_option("--batch", o->batch, "Scenes per step")->capture_default_str()->check(in_range(1, 128));
  cmd->add_option("--lr", o->lr, "Adam learning rate (warm-up, then cosine)")->capture_default_str()->check(
      in_range(1e-6, 1.0));
  cmd->add_option("--zoom", o->zoom,
                  "Scale jitter: each scene is zoomed by a factor drawn uniformly from MIN MAX (default 0.8 1.25)")
      ->capture_default_str();
  cmd->add_option("--seed", o->seed, "Seed for order and augmentation")
      ->capture_default_str()
      ->check(in_range(0.0, 1.8446744073709552e19));
  cmd->add_flag("--iou-target,!--no-iou-target", o->iou_score_target,
                "The class score of a face's cells learns the IoU of their box with it (else 1)")
      ->default_str(o->iou_score_target ? "true" : "false");  // capture_default_str shows a flag's {false}
  cmd->add_option("--operating-score", o->operating_score,
                  "The fine-tuned score that the product's face threshold (0.6) should stand for: the saved model "
                  "records the exponent that maps one to the other (ranking unchanged)")
      ->capture_default_str()
      ->check(in_range(0.05, 0.95));
  cmd->add_flag("--freeze-backbone", o->freeze_backbone, "Train the neck and the heads only");
  cmd->add_flag("--refit-boxes,!--keep-base-correction", o->refit_box_correction,
                "Fit the box correction (to the annotators' boxes) again for the tuned model on its training "
                "scenes, as `eval --scenes --fit-boxes` does; --keep-base-correction records the base model's")
      ->default_str(o->refit_box_correction ? "true" : "false");
  add_threads_option(cmd, *threads);
  cmd->callback([=] {
    setup_training_compute(*threads);
    o->scenes = *scenes;
    o->out = *out;
    o->base_model = resolve_face_model(*base);
    if (!is_yunet_2023(o->base_model))
      throw Error(fmt::format("--base {} is not a 2023 YuNet model: train-faces tunes yunet-n, yunet-s or a model "
                              "tuned from them",
                              *base));
    check_tuned_model_path(o->out, *o, *split);
    if (*hold_out != "none") o->held_out = voc_scenes_of_parity(o->scenes, *hold_out == "odd" ? 1 : 0);
    if (!split->empty())
      for (const auto& s : unseen_scenes(*split)) o->held_out.insert(s);
    const auto r = tune_face_detector(*o);
    fmt::print("fine-tuned on {} scenes ({} labelled faces; {} held out) in {}: loss {:.3f} -> {:.3f}\n", r.scenes,
               r.faces, r.held_out, format_duration(r.seconds), r.first_loss, r.last_loss);
    fmt::print("box correction in its metadata: {}\n", r.correction.to_text());
    fmt::print("wrote {}; try it: maskwatch eval --scenes {} --face-model {}\n", o->out.string(), o->scenes.string(),
               o->out.string());
  });
}

}  // namespace maskwatch::app
