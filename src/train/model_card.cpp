#include "train/model_card.h"

#include <fmt/format.h>

#include <chrono>
#include <ctime>

#include "util/files.h"

namespace maskwatch {

namespace {
std::string pct(double v) { return fmt::format("{:.2f} %", v * 100); }
std::string today() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", std::gmtime(&t));
  return buf;
}

double recall_of(const ClassificationReport& r, size_t c) {
  return c < r.per_class.size() ? r.per_class[c].recall : 0.0;
}

// One row per source plus "all": n, accuracy, balanced accuracy, recall per class.
std::string per_source_table(const SplitEvaluation& ev, const std::vector<std::string>& classes) {
  std::string s = "| source | n | accuracy | balanced accuracy |";
  for (const auto& c : classes) s += fmt::format(" recall {} |", c);
  s += "\n|---|---|---|---|";
  for (size_t c = 0; c < classes.size(); ++c) s += "---|";
  s += "\n";
  const auto row = [&](const std::string& name, const ClassificationReport& r) {
    s += fmt::format("| {} | {} | {} | {} |", name, r.n, pct(r.accuracy), pct(r.balanced_accuracy));
    for (size_t c = 0; c < classes.size(); ++c)
      s += r.per_class[c].n ? fmt::format(" {} |", pct(recall_of(r, c))) : " - |";
    s += "\n";
  };
  for (const auto& [name, r] : ev.per_source) row(name, r);
  row("**all**", ev.overall);
  return s;
}
}  // namespace

std::string source_note(const std::string& source) {
  // A class folder folded by --map ("jolignier/mask_worn_incorrectly"): its source's note, and what it holds.
  if (const auto slash = source.find('/'); slash != std::string::npos)
    return fmt::format("{} ({}, folded into another class by --map)", source_note(source.substr(0, slash)),
                       source.substr(slash + 1) == "mask_worn_incorrectly" ? "masks under the nose or on the chin"
                                                                         : source.substr(slash + 1));
  if (source == "seed-masks")
    return "the original project's training set (Prajna Bhandary's \"observations\" data): masks pasted onto "
           "photos by a script; no licence stated";
  if (source == "jolignier")
    return "jolignier/face-mask-dataset-ilc-2021, street and indoor scenes with VOC boxes; no licence stated";
  if (source == "rmfd_part1" || source == "karan_rmfd_part2")
    return "Real-World Masked Face Dataset (RMFD); no licence stated; about 3-5 % of with_mask crops show an "
           "unmasked face, some masks under the chin";
  if (source == "karan_trainingimages") return "unmasked portraits and group photos; no licence stated";
  if (source.rfind("fm12k", 0) == 0)
    return "Face Mask 12K, MIT licence; its unmasked half comes from CelebA (research use only)";
  return "";
}

std::string model_card_markdown(const TrainingMetrics& m, const std::string& command_line) {
  const auto& recipe = m.recipe;
  std::string s = "# Model card: maskwatch face-mask classifier\n\n";
  s += fmt::format("Trained {} with:\n\n```\n{}\n```\n\n", today(), command_line);
  s += "## What it is\n\n";
  s += fmt::format(
      "MobileNetV2 1.0 (ImageNet weights imported from `{}`) + head GAP -> Dense {} ReLU -> Dropout {} -> Dense {}, "
      "input {}x{} RGB scaled to [-1, 1]: a square crop of {}x the YuNet face box, as `maskwatch run` cuts it. "
      "Classes in output order: {}. Exported to ONNX (opset 10, BatchNorm folded) for XNNPACK (OpenCV DNN as the fallback engine); `model.json` beside "
      "it says how to feed it. {}\n\n",
      recipe["backbone"].get<std::string>(), recipe["head"]["hidden"].get<int>(),
      recipe["head"]["dropout"].get<double>(), m.classes.size(), recipe["input_size"].get<int>(),
      recipe["input_size"].get<int>(), 1.5, fmt::join(m.classes, ", "),
      m.calibration.skipped.empty()
          ? fmt::format("Probabilities are calibrated (temperature {:.3f}, fitted on the validation split, folded "
                        "into the last layer).",
                        m.calibration.temperature)
          : fmt::format("Probabilities are not calibrated ({}).", m.calibration.skipped));

  s += "## Data\n\n";
  const auto& data = m.data;
  s += fmt::format(
      "{} usable images ({}), {} skipped (undecodable), {} excluded by the exclusion list, {} non-image "
      "files ignored. Data folders: {}.{}\n\n",
      data["images"].get<int>(), data["per_class"].dump(), data["skipped_count"].get<int>(), data.value("excluded", 0),
      data["ignored_non_image_files"].get<int>(), fmt::join(recipe["data"].get<std::vector<std::string>>(), ", "),
      recipe["class_map"].empty() ? "" : " Class folders mapped: " + recipe["class_map"].dump() + ".");
  s += "| source | images per class | crops: face / whole image / no face found | origin and licence "
       "|\n|---|---|---|---|\n";
  for (const auto& [src, counts] : data["per_source"].items()) {
    const auto crops = data["crops"].value(src, nlohmann::json::object());
    s += fmt::format("| {} | {} | {} / {} / {} | {} |\n", src, counts.dump(), crops.value("face", 0),
                     crops.value("whole_image", 0), crops.value("no_face", 0), source_note(src));
  }
  s += "\nUse for research and evaluation: most sources state no licence (see `../shared/README.md`).\n\n";
  s += fmt::format("- Data manifest sha256: `{}` (every file with its sha256; see split.json).\n",
                   data["manifest_sha256"].get<std::string>());
  s += fmt::format(
      "- Split (seed {}, 70/15/15 stratified by source and class, near-duplicate groups and crops of one "
      "photo kept whole): {}\n",
      recipe["seed"].get<uint64_t>(), m.split["counts"].dump());
  const auto& nd = m.near_duplicates;
  if (nd.value("enabled", false)) {
    const auto& leak = nd["leak"];
    s += fmt::format(
        "- Near-duplicates: {} groups for {} images ({} groups hold copies or crops of one photo, largest {}; {} "
        "merges "
        "came from MANIFEST.csv photo ids). Test images with a near copy in train: **{} of {}** here, {} with a plain "
        "random split of the same data.\n",
        nd["groups"].get<int>(), data["images"].get<int>(), nd["groups_with_duplicates"].get<int>(),
        nd["largest_group"].get<int>(), nd.value("merged_by_photo", 0),
        leak["this_split"]["with_near_copy_in_train"].get<int>(), leak["this_split"]["test_images"].get<int>(),
        leak["plain_random_split"]["with_near_copy_in_train"].get<int>());
  } else {
    s += "- Near-duplicate grouping was OFF: the test split may contain copies of training images.\n";
  }

  s += "\n## Training\n\n";
  const auto& aug = recipe["augment"];
  s += fmt::format(
      "Phase 1: backbone frozen, Adam lr {}, batch {}, {} epochs over {} augmented views of every training image "
      "(epoch e uses view e mod {}). Phase 2: blocks {}..16 and the final 1x1 conv unfrozen, Adam lr {}, {} epochs. "
      "Geometry: rotation ±{}°, zoom ±{}, shift ±{}, shear ±{}°, flip {}. Camera effects (both classes alike): "
      "{}. Best epoch by validation loss: **{}**.\n\n",
      recipe["lr"].get<double>(), recipe["batch"].get<int>(), recipe["epochs"].get<int>(), recipe["views"].get<int>(),
      recipe["views"].get<int>(), recipe["fine_tune_from_block"].get<int>(), recipe["fine_tune_lr"].get<double>(),
      recipe["fine_tune_epochs"].get<int>(), aug["rotation_deg"].get<double>(), aug["zoom"].get<double>(),
      aug["shift"].get<double>(), aug["shear_deg"].get<double>(), aug["flip"].get<bool>() ? "yes" : "no",
      aug["photo"].dump(), m.best_epoch);
  s += "| epoch | phase | train loss | train acc | val loss | val acc | s |\n|---|---|---|---|---|---|---|\n";
  for (const auto& e : m.epochs)
    s += fmt::format("| {}{} | {} | {:.4f} | {} | {:.4f} | {} | {:.1f} |\n", e.epoch,
                     e.epoch == m.best_epoch ? " *" : "", e.phase, e.train_loss, pct(e.train_accuracy), e.val_loss,
                     pct(e.val_accuracy), e.seconds);
  const auto& t = m.timing;
  s += fmt::format(
      "\n{} {:.0f} s: data {:.0f} s (decode and face crops {:.0f}, features {:.0f}, "
      "near-duplicates {:.0f}), phase 1 {:.0f} s (of which augmented views {:.0f}), phase 2 {:.0f} s, "
      "export and evaluation {:.0f} s. Peak RSS {:.0f} MiB.\n\n",
      t.resumed ? "Wall clock of the last session (a resumed run; phase times are totals)" : "Wall clock", t.wall_s,
      t.data_s(), t.decode_s, t.features_s, t.dedup_s, t.phase1_s, t.views_s, t.phase2_s, t.finish_s, m.peak_rss_mib);

  s += "## Test metrics (held-out split, through the exported ONNX model, as `run` runs it)\n\n";
  const auto& test = m.test.overall;
  s += fmt::format("Accuracy **{}** on {} images; balanced accuracy **{}**. Per source:\n\n", pct(test.accuracy),
                   test.n, pct(test.balanced_accuracy));
  s += per_source_table(m.test, m.classes);
  s += fmt::format("\nConfusion (rows true, cols predicted, order {}): {}. Validation: accuracy {} on {} images.\n\n",
                   fmt::join(m.classes, ", "), nlohmann::json(test.confusion).dump(), pct(m.val.overall.accuracy),
                   m.val.overall.n);
  for (const auto& b : m.baselines) {
    s += fmt::format("The same test split through `{}` (its own input size, the same crops):\n\n", b.model);
    s += per_source_table(b, m.classes) + "\n";
  }
  const auto& c = m.calibration;
  if (c.skipped.empty())
    s += fmt::format(
        "Calibration: temperature {:.3f}; expected calibration error (10 bins) on validation {:.4f} -> "
        "{:.4f}, on test {:.4f} -> {:.4f} (`reliability.png`).\n\n",
        c.temperature, c.val_ece_before, c.val_ece_after, c.test_ece_before, c.test_ece_after);
  else
    s += fmt::format("Calibration: none ({}).\n\n", c.skipped);
  if (m.quality_gate.is_object() && m.quality_gate.contains("threshold")) {
    // A three-class model's gate: chin masks and bare faces judged together, as the consumers count them.
    const std::string judged =
        m.quality_gate.contains("judges")
            ? fmt::format(" It judges the answer the consumers count ({}), the model's other classes summed into "
                          "them; balanced accuracy below is over those classes.",
                          fmt::join(m.quality_gate["judges"].get<std::vector<std::string>>(), " or "))
            : "";
    s += fmt::format(
        "Quality gate (faces that cannot be judged from their frame are shown as uncertain): answer when P(right) >= "
        "{:.4f}, fitted on the validation crops under camera conditions.{} On validation:\n\n"
        "| condition | answered | balanced accuracy of those answered | of all faces |\n|---|---|---|---|\n",
        m.quality_gate["threshold"].get<double>(), judged);
    for (const auto& c : m.quality_gate["conditions"])
      s += fmt::format("| {} | {} | {} | {} |\n", c["name"].get<std::string>(), pct(c["coverage"].get<double>()),
                       pct(c["answered_balanced_accuracy"].get<double>()), pct(c["balanced_accuracy"].get<double>()));
    s += "\n";
  }

  s += "## Known limits\n\n";
  s += "- A mask counts as worn only when it covers mouth and nose. Some sources label masks under the chin or nose "
       "as with_mask and about 3-5 % of the RMFD with_mask crops show unmasked faces: these labels cap the measurable "
       "accuracy and teach some errors (see the exclusion list and `maskwatch audit`).\n";
  s += "- The seed-masks masks are pasted graphics; Face Mask 12K's unmasked half is sharp celebrity photos while many "
       "masked ones are upscaled web images, a shortcut that camera effects in training (both classes alike) work "
       "against. Per-source numbers above are the early warning.\n";
  s += fmt::format(
      "- The test split has {} images; one image is about {:.2f} percentage points. Sources with few "
      "test images move more.\n",
      test.n, 100.0 / std::max(1, test.n));
  s += "- Faces must be found first (YuNet in `maskwatch run`/`detect`): a face the detector misses gets no verdict.\n";
  return s;
}

void write_model_card(const std::filesystem::path& path, const TrainingMetrics& metrics,
                      const std::string& command_line) {
  write_file_atomic(path, model_card_markdown(metrics, command_line));
}

}  // namespace maskwatch
