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
}  // namespace

std::string model_card_markdown(const nlohmann::json& m, const std::string& command_line) {
  const auto& recipe = m.at("recipe");
  const auto& test = m.at("test");
  std::string s = "# Model card: maskwatch face-mask classifier\n\n";
  s += fmt::format("Trained {} with:\n\n```\n{}\n```\n\n", today(), command_line);
  s += "## What it is\n\n";
  s += fmt::format(
      "MobileNetV2 1.0 (ImageNet weights imported from `{}`) + head GAP -> Dense {} ReLU -> Dropout {} -> Dense {}, "
      "input {}x{} RGB scaled to [-1, 1]. Classes in output order: {}. Exported to ONNX (opset 10, BatchNorm folded) "
      "for OpenCV DNN; `model.json` beside it says how to feed it.\n\n",
      recipe["backbone"].get<std::string>(), recipe["head"]["hidden"].get<int>(), recipe["head"]["dropout"].get<double>(),
      m["classes"].size(), recipe["input_size"].get<int>(), recipe["input_size"].get<int>(),
      fmt::join(m["classes"].get<std::vector<std::string>>(), ", "));
  s += "## Data\n\n";
  const auto& data = m.at("data");
  s += fmt::format("- Folder `{}`: {} usable images ({}), {} skipped (undecodable), {} non-image files ignored.\n",
                   data["root"].get<std::string>(), data["images"].get<int>(), data["per_class"].dump(),
                   data["skipped_count"].get<int>(), data["ignored_non_image_files"].get<int>());
  s += fmt::format("- Data manifest sha256: `{}` (file list with per-file sha256; see split.json).\n",
                   data["manifest_sha256"].get<std::string>());
  s += fmt::format("- Split (seed {}, stratified, near-duplicate groups kept whole): {}\n", recipe["seed"].get<uint64_t>(),
                   m["split"].dump());
  const auto& nd = m.value("near_duplicates", nlohmann::json::object());
  if (nd.value("enabled", false)) {
    const auto& leak = nd["leak"];
    s += fmt::format(
        "- Near-duplicates: {} groups for {} images ({} groups hold copies, largest {}). Test images with a near "
        "copy in train: **{} of {}** here, {} of {} with a plain random split of the same data. Looser: test images "
        "with a train image of embedding cosine >= {}: {} here, {} with a random split.\n",
        nd["groups"].get<int>(), data["images"].get<int>(), nd["groups_with_duplicates"].get<int>(),
        nd["largest_group"].get<int>(), leak["this_split"]["with_near_copy_in_train"].get<int>(),
        leak["this_split"]["test_images"].get<int>(), leak["plain_random_split"]["with_near_copy_in_train"].get<int>(),
        leak["plain_random_split"]["test_images"].get<int>(), leak["this_split"]["similar_cosine_threshold"].get<double>(),
        leak["this_split"]["with_similar_train_image"].get<int>(),
        leak["plain_random_split"]["with_similar_train_image"].get<int>());
  } else {
    s += "- Near-duplicate grouping was OFF: the test split may contain copies of training images.\n";
  }
  s += "\n## Training\n\n";
  s += fmt::format(
      "Phase 1: backbone frozen, Adam lr {}, batch {}, {} epochs. Phase 2: blocks {}..16 and the final 1x1 conv "
      "unfrozen, Adam lr {}, {} epochs. Augmentation: rotation ±{}°, zoom ±{}, shift ±{}, shear ±{}°, flip {}. Best "
      "epoch by validation loss: **{}**.\n\n",
      recipe["lr"].get<double>(), recipe["batch"].get<int>(), recipe["epochs"].get<int>(),
      recipe["fine_tune_from_block"].get<int>(), recipe["fine_tune_lr"].get<double>(),
      recipe["fine_tune_epochs"].get<int>(), recipe["augment"]["rotation_deg"].get<double>(),
      recipe["augment"]["zoom"].get<double>(), recipe["augment"]["shift"].get<double>(),
      recipe["augment"]["shear_deg"].get<double>(), recipe["augment"]["flip"].get<bool>() ? "yes" : "no",
      m["best_epoch"].get<int>());
  s += "| epoch | phase | train loss | train acc | val loss | val acc | s | img/s |\n|---|---|---|---|---|---|---|---|\n";
  for (const auto& e : m["epochs"])
    s += fmt::format("| {}{} | {} | {:.4f} | {} | {:.4f} | {} | {:.1f} | {:.0f} |\n", e["epoch"].get<int>(),
                     e["epoch"].get<int>() == m["best_epoch"].get<int>() ? " *" : "", e["phase"].get<int>(),
                     e["train_loss"].get<double>(), pct(e["train_accuracy"]), e["val_loss"].get<double>(),
                     pct(e["val_accuracy"]), e["seconds"].get<double>(), e["images_per_second"].get<double>());
  const auto& timing = m["timing"];
  s += fmt::format("\nTraining time: phase 1 {:.0f} s, phase 2 {:.0f} s; data preparation (decode, features, "
                   "near-duplicates) not included. Peak RSS {:.0f} MiB.\n\n",
                   timing["phase1_seconds"].get<double>(), timing["phase2_seconds"].get<double>(),
                   m.value("peak_rss_mib", 0.0));
  s += "## Test metrics (held-out split, through the exported ONNX model in OpenCV DNN)\n\n";
  s += fmt::format("- Accuracy **{}** on {} images; balanced accuracy {}.\n", pct(test["accuracy"]),
                   test["n"].get<int>(), pct(test["balanced_accuracy"]));
  for (const auto& [name, c] : test["per_class"].items())
    s += fmt::format("- {}: precision {}, recall {}, F1 {:.4f}, n {}\n", name, pct(c["precision"]), pct(c["recall"]),
                     c["f1"].get<double>(), c["n"].get<int>());
  s += fmt::format("- Confusion (rows true, cols predicted, order {}): {}\n",
                   fmt::join(m["classes"].get<std::vector<std::string>>(), ", "), test["confusion"].dump());
  s += fmt::format("- Validation: accuracy {} on {} images.\n\n", pct(m["val"]["accuracy"]), m["val"]["n"].get<int>());
  s += "## Known limits\n\n";
  s += "- The masks in the seed training data are **synthetic** (one surgical-mask graphic pasted onto photos), so "
       "these scores measure recognition of that pasted mask on mostly frontal faces. Real masks (cloth, N95, "
       "coloured, patterned), side views, low light, motion blur and partly worn masks are not in the training data; "
       "check the model on real photos before relying on it.\n";
  s += "- The test split is small; one image is about " +
       fmt::format("{:.2f}", 100.0 / std::max(1, test["n"].get<int>())) + " percentage points.\n";
  s += "- Faces must be found first (YuNet in `maskwatch run`/`detect`); the classifier expects a face crop with some "
       "margin, like the training photos.\n";
  return s;
}

void write_model_card(const std::filesystem::path& path, const nlohmann::json& metrics, const std::string& command_line) {
  write_file_atomic(path, model_card_markdown(metrics, command_line));
}

}  // namespace maskwatch
