#include "train/trainer.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <atomic>
#include <cmath>

#include "data/dataset.h"
#include "data/split_file.h"
#include "nn/mask_net.h"
#include "nn/onnx_export.h"
#include "nn/tflite_import.h"
#include "perf/timing.h"
#include "util/stopwatch.h"
#include "train/batch_loader.h"
#include "train/checkpoint.h"
#include "train/features.h"
#include "eval/metrics.h"
#include "train/model_card.h"
#include "eval/plots.h"
#include "util/error.h"
#include "util/json_io.h"
#include "util/progress.h"
#include "util/sha256.h"
#include "nn/torch_threads.h"
#include "vision/mask_classifier.h"

namespace maskwatch {
namespace {

std::atomic<bool> g_stop{false};
constexpr const char* kCheckpointFile = "checkpoint.pt";
constexpr const char* kBestFile = "best.pt";

struct Prepared {
  Dataset ds;
  std::vector<cv::Mat> images;
  std::vector<int> labels;
  SplitAssignment assignment;
  std::vector<size_t> train, val, test;  // dataset indices per split
  nlohmann::json split_info;
};

// At most n items per class, chosen by a seeded hash of the name (stable across runs).
void limit_per_class(Dataset& ds, int n, uint64_t seed) {
  std::vector<DatasetItem> kept;
  for (size_t c = 0; c < ds.classes.size(); ++c) {
    std::vector<DatasetItem> items;
    for (const auto& it : ds.items)
      if (it.label == static_cast<int>(c)) items.push_back(it);
    std::sort(items.begin(), items.end(), [&](const DatasetItem& a, const DatasetItem& b) {
      return mix_seed(seed, fnv1a(a.rel)) < mix_seed(seed, fnv1a(b.rel));
    });
    if (static_cast<int>(items.size()) > n) items.resize(static_cast<size_t>(n));
    kept.insert(kept.end(), items.begin(), items.end());
  }
  std::sort(kept.begin(), kept.end(), [](const DatasetItem& a, const DatasetItem& b) {
    return a.label != b.label ? a.label < b.label : a.rel < b.rel;
  });
  ds.items = std::move(kept);
}

torch::Tensor label_tensor(const std::vector<int>& labels, const std::vector<size_t>& idx) {
  std::vector<int64_t> v;
  for (size_t i : idx) v.push_back(labels[i]);
  return torch::tensor(v, torch::kLong);
}

torch::Tensor index_tensor(const std::vector<size_t>& idx) {
  return torch::tensor(std::vector<int64_t>(idx.begin(), idx.end()), torch::kLong);
}

struct EvalResult {
  double loss = 0, accuracy = 0;
  torch::Tensor probs;  // [N, classes]
};

// Head (and tail) in eval mode on precomputed prefix features.
EvalResult evaluate(MaskNet& net, const FrozenBackbone& frozen, const torch::Tensor& prefix,
                    const torch::Tensor& labels) {
  EvalResult r;
  if (prefix.size(0) == 0) return r;
  net->eval();
  torch::NoGradGuard no_grad;
  const auto logits = net->head(frozen.tail_pooled(prefix));
  r.loss = torch::nn::functional::cross_entropy(logits, labels).item<double>();
  r.accuracy = logits.argmax(1).eq(labels).to(torch::kFloat64).mean().item<double>();
  r.probs = torch::softmax(logits, 1);
  return r;
}

std::string recipe_fingerprint(const TrainOptions& o, const Dataset& ds) {
  return sha256_hex(o.recipe().dump() + ds.manifest_sha256());
}

void check_out_dir(const TrainOptions& o) {
  const bool has_run = std::filesystem::exists(o.out / kCheckpointFile) || std::filesystem::exists(o.out / "model.onnx");
  if (has_run && !o.resume && !o.force)
    throw Error(fmt::format("{} already holds a training run: use --resume to continue it or --force to start over",
                            o.out.string()));
  if (o.force && !o.resume)
    for (const char* f : {kCheckpointFile, kBestFile, "metrics.json", "split.json"}) std::filesystem::remove(o.out / f);
  std::filesystem::create_directories(o.out);
}

void validate(const TrainOptions& o) {
  check_input_size(o.input_size);
  if (o.epochs < 0 || o.fine_tune_epochs < 0 || o.epochs + o.fine_tune_epochs == 0)
    throw Error("nothing to train: --epochs and --fine-tune-epochs are both 0");
  if (o.batch < 1) throw Error("--batch must be at least 1");
  if (o.fine_tune_from_block < 0 || o.fine_tune_from_block > 16) throw Error("--fine-tune-from-block must be 0..16");
  if (o.lr <= 0 || o.fine_tune_lr <= 0) throw Error("learning rates must be positive");
}

// Frozen-prefix features of images, 32 at a time (bounded memory), with a progress bar.
torch::Tensor prefix_features(const FrozenBackbone& frozen, const std::vector<cv::Mat>& images, int size,
                              const std::string& label) {
  ProgressBar bar(label, images.size(), "img");
  std::vector<torch::Tensor> parts;
  for (size_t i = 0; i < images.size(); i += 32) {
    const std::vector<cv::Mat> chunk(images.begin() + static_cast<long>(i),
                                     images.begin() + static_cast<long>(std::min(images.size(), i + 32)));
    parts.push_back(frozen.prefix_of_images(chunk, size));
    bar.advance(chunk.size());
  }
  bar.finish();
  return torch::cat(parts, 0);
}

// Scans, decodes, groups near-duplicates and splits (or reloads split.json on resume).
Prepared prepare_data(const TrainOptions& o, const FrozenBackbone& frozen, torch::Tensor& prefix_all) {
  Prepared p;
  p.ds = scan_dataset(o.data);
  if (o.limit_per_class > 0) limit_per_class(p.ds, o.limit_per_class, o.seed);
  Stopwatch sw;
  p.images = load_dataset_images(p.ds, o.input_size);
  const double decode_s = sw.ms() / 1000;
  for (const auto& it : p.ds.items) p.labels.push_back(it.label);
  const int k = static_cast<int>(p.ds.classes.size());
  spdlog::info("{} images in {} classes ({}), decoded in {}", p.ds.items.size(), k, fmt::join(p.ds.classes, ", "),
               format_duration(decode_s));

  // Unaugmented prefix features of every image: val/test inputs, and embeddings for dedup.
  sw.reset();
  prefix_all = prefix_features(frozen, p.images, o.input_size, "features");
  const double features_s = sw.ms() / 1000;

  const auto split_path = o.out / "split.json";
  if (o.resume && std::filesystem::exists(split_path)) {
    p.split_info = read_json(split_path, "split file");
    p.assignment = split_from_json(p.split_info, p.ds, split_path.string());
    spdlog::info("reusing the split in {}", split_path.string());
  } else {
    sw.reset();
    std::vector<int> groups(p.images.size());
    std::iota(groups.begin(), groups.end(), 0);
    nlohmann::json dedup = {{"enabled", o.dedup}};
    if (o.dedup) {
      std::vector<cv::Mat> mirrored(p.images.size());
      for (size_t i = 0; i < p.images.size(); ++i) cv::flip(p.images[i], mirrored[i], 1);
      const auto mirrored_pooled =
          frozen.tail_pooled(prefix_features(frozen, mirrored, o.input_size, "mirrored features"));
      const auto to_mat = [](const torch::Tensor& t) {
        const auto c = t.contiguous();
        return cv::Mat(static_cast<int>(c.size(0)), static_cast<int>(c.size(1)), CV_32F, c.data_ptr<float>()).clone();
      };
      const auto found = find_near_duplicates(p.images, to_mat(frozen.tail_pooled(prefix_all)), to_mat(mirrored_pooled),
                                              o.dedup_options);
      groups = found.group;
      dedup = found.summary();
      dedup["enabled"] = true;
      dedup["seconds"] = sw.ms() / 1000;
      p.assignment.split = split_groups(p.labels, groups, k, o.fractions, o.seed);
      dedup["leak"] = leak_report(found, p.labels, k, p.assignment.split, o.fractions, o.seed);
      spdlog::info("near-duplicates: {} groups for {} images ({} groups with copies); test images with a near copy "
                   "in train: {} (a plain random split: {})",
                   found.num_groups, p.images.size(), dedup["groups_with_duplicates"].get<int>(),
                   dedup["leak"]["this_split"]["with_near_copy_in_train"].get<int>(),
                   dedup["leak"]["plain_random_split"]["with_near_copy_in_train"].get<int>());
    } else {
      p.assignment.split = split_groups(p.labels, groups, k, o.fractions, o.seed);
    }
    p.assignment.group = groups;
    p.split_info = split_to_json(
        p.ds, p.assignment,
        {{"seed", o.seed},
         {"fractions", {{"train", o.fractions.train}, {"val", o.fractions.val}, {"test", o.fractions.test}}},
         {"near_duplicates", dedup},
         {"data", p.ds.summary()}});
    write_json_atomic(split_path, p.split_info);
  }
  p.split_info["timing"] = {{"decode_seconds", decode_s}, {"features_seconds", features_s}};
  for (size_t i = 0; i < p.assignment.split.size(); ++i) {
    switch (p.assignment.split[i]) {
      case Split::Train: p.train.push_back(i); break;
      case Split::Val: p.val.push_back(i); break;
      case Split::Test: p.test.push_back(i); break;
    }
  }
  if (p.train.empty()) throw Error("the training split is empty: add images");
  return p;
}

struct EpochStats {
  double loss = 0, correct = 0, n = 0;
  void add(const torch::Tensor& logits, const torch::Tensor& labels, const torch::Tensor& loss_value) {
    const double b = static_cast<double>(labels.size(0));
    loss += loss_value.item<double>() * b;
    correct += logits.argmax(1).eq(labels).sum().item<double>();
    n += b;
  }
  std::string status() const {
    return n ? fmt::format("loss {:.4f} acc {:.2f}%", loss / n, 100 * correct / n) : "";
  }
};

class Trainer {
 public:
  explicit Trainer(const TrainOptions& o) : o_(o), split_stage_(o.fine_tune_from_block + 1) {}

  TrainResult run();

 private:
  void phase1_epoch(int e, torch::optim::Adam& opt);
  void phase2_epoch(int k, torch::optim::Adam& opt);
  // Frozen-prefix features of the augmented training images of phase-1 epoch e (cached, or
  // recomputed exactly as phase 1 made them: same order, batches and warps).
  const torch::Tensor& augmented_prefix(int e);
  void end_epoch(int phase, int epoch, const EpochStats& s, double seconds, double lr, torch::optim::Optimizer& opt);
  void write_metrics(const std::string& status);
  std::vector<std::vector<size_t>> phase1_batches(int e) const;
  // Rows of the augmented-feature caches for these dataset items.
  torch::Tensor cache_rows(const std::vector<size_t>& items) const {
    std::vector<int64_t> rows;
    for (size_t i : items) rows.push_back(train_pos_[i]);
    return torch::tensor(rows, torch::kLong);
  }
  // An empty cache tensor for all training images.
  torch::Tensor new_cache() const {
    return torch::empty({static_cast<int64_t>(data_.train.size()), prefix_all_.size(1), prefix_all_.size(2),
                         prefix_all_.size(3)});
  }
  bool stop_now() const { return g_stop.load(); }
  TrainResult finish();

  const TrainOptions& o_;
  int split_stage_;
  MaskNet net_{nullptr};
  std::unique_ptr<FrozenBackbone> frozen_;
  Prepared data_;
  torch::Tensor prefix_all_;  // unaugmented prefix features of every image
  torch::Tensor val_prefix_, test_prefix_, val_labels_, test_labels_;
  std::vector<int64_t> train_pos_;  // dataset index -> row in the augmented caches
  std::map<int, torch::Tensor> cache_;
  LoopState state_;
  std::vector<nlohmann::json> history_;
  int epochs_this_run_ = 0;
  Stopwatch wall_;
};

std::vector<std::vector<size_t>> Trainer::phase1_batches(int e) const {
  return make_batches(seeded_shuffle(data_.train, mix_seed(o_.seed, 1, static_cast<uint64_t>(e))), o_.batch);
}

const torch::Tensor& Trainer::augmented_prefix(int e) {
  if (auto it = cache_.find(e); it != cache_.end()) return it->second;
  torch::Tensor feats = new_cache();
  BatchLoader loader(data_.images, phase1_batches(e), o_.augment, mix_seed(o_.seed, 1, static_cast<uint64_t>(e)),
                     o_.input_size);
  ProgressBar bar(fmt::format("phase 2: features of augmented epoch {}", e + 1), data_.train.size(), "img");
  for (Batch b; loader.next(b);) {
    feats.index_copy_(0, cache_rows(b.items), frozen_->prefix(b.images));
    bar.advance(b.items.size());
    if (stop_now()) throw Error("training interrupted: the last complete epoch is saved, continue with --resume");
  }
  bar.finish();
  return cache_[e] = feats;
}

void Trainer::phase1_epoch(int e, torch::optim::Adam& opt) {
  Stopwatch sw;
  torch::manual_seed(mix_seed(o_.seed, 1, static_cast<uint64_t>(e)));  // dropout masks
  const bool keep = e < o_.fine_tune_epochs;  // phase 2 reuses these augmented features
  torch::Tensor keep_feats = keep ? new_cache() : torch::Tensor();
  BatchLoader loader(data_.images, phase1_batches(e), o_.augment, mix_seed(o_.seed, 1, static_cast<uint64_t>(e)),
                     o_.input_size);
  ProgressBar bar(fmt::format("phase 1 epoch {}/{}", e + 1, o_.epochs), data_.train.size(), "img");
  EpochStats stats;
  for (Batch b; loader.next(b);) {
    const auto pre = frozen_->prefix(b.images);
    if (keep) keep_feats.index_copy_(0, cache_rows(b.items), pre);
    const auto pooled = frozen_->tail_pooled(pre);
    const auto labels = label_tensor(data_.labels, b.items);
    net_->set_training(true);
    opt.zero_grad();
    const auto logits = net_->head(pooled);
    const auto loss = torch::nn::functional::cross_entropy(logits, labels);
    loss.backward();
    opt.step();
    stats.add(logits.detach(), labels, loss.detach());
    bar.advance(b.items.size(), stats.status());
    if (stop_now()) return;
  }
  bar.finish(stats.status());
  if (keep) cache_[e] = keep_feats;
  end_epoch(1, e, stats, sw.ms() / 1000, o_.lr, opt);
}

void Trainer::phase2_epoch(int k, torch::optim::Adam& opt) {
  Stopwatch sw;
  const torch::Tensor& feats = augmented_prefix(k);
  torch::manual_seed(mix_seed(o_.seed, 2, static_cast<uint64_t>(k)));
  std::vector<size_t> rows(data_.train.size());
  std::iota(rows.begin(), rows.end(), 0);
  const auto batches = make_batches(seeded_shuffle(rows, mix_seed(o_.seed, 2, static_cast<uint64_t>(k))), o_.batch);
  ProgressBar bar(fmt::format("phase 2 epoch {}/{}", k + 1, o_.fine_tune_epochs), data_.train.size(), "img");
  EpochStats stats;
  for (const auto& batch : batches) {
    std::vector<size_t> items;
    for (size_t r : batch) items.push_back(data_.train[r]);
    const auto x = feats.index_select(0, index_tensor(batch)).contiguous(torch::MemoryFormat::ChannelsLast);
    const auto labels = label_tensor(data_.labels, items);
    net_->set_training(true);
    opt.zero_grad();
    const auto logits =
        net_->head(MaskNet::Impl::pool(net_->backbone->forward_stages(x, split_stage_, kNumStages - 1)));
    const auto loss = torch::nn::functional::cross_entropy(logits, labels);
    loss.backward();
    opt.step();
    stats.add(logits.detach(), labels, loss.detach());
    bar.advance(batch.size(), stats.status());
    if (stop_now()) return;
  }
  bar.finish(stats.status());
  cache_.erase(k);  // each phase-2 epoch uses its cache once
  end_epoch(2, k, stats, sw.ms() / 1000, o_.fine_tune_lr, opt);
}

void Trainer::end_epoch(int phase, int epoch, const EpochStats& s, double seconds, double lr,
                        torch::optim::Optimizer& opt) {
  const auto val = evaluate(net_, *frozen_, val_prefix_, val_labels_);
  const int global = static_cast<int>(history_.size());
  const bool improved = !data_.val.empty() ? val.loss < state_.best_val_loss : true;
  if (improved) {
    state_.best_val_loss = data_.val.empty() ? s.loss / s.n : val.loss;
    state_.best_epoch = global;
    state_.bad_epochs = 0;
    save_weights(o_.out / kBestFile, net_);
  } else {
    ++state_.bad_epochs;
  }
  history_.push_back({{"epoch", global + 1},
                      {"phase", phase},
                      {"phase_epoch", epoch + 1},
                      {"train_loss", s.loss / s.n},
                      {"train_accuracy", s.correct / s.n},
                      {"val_loss", val.loss},
                      {"val_accuracy", val.accuracy},
                      {"learning_rate", lr},
                      {"seconds", seconds},
                      {"images_per_second", s.n / std::max(seconds, 1e-9)},
                      {"best_so_far", improved}});
  spdlog::info("phase {} epoch {}: train loss {:.4f} acc {:.2f}% | val loss {:.4f} acc {:.2f}%{}", phase, epoch + 1,
               s.loss / s.n, 100 * s.correct / s.n, val.loss, 100 * val.accuracy, improved ? " (best)" : "");
  state_.phase_seconds[phase - 1] += seconds;
  state_.phase = phase;
  state_.next_epoch = epoch + 1;
  save_checkpoint(o_.out / kCheckpointFile, net_, opt, state_);
  write_metrics("running");
  ++epochs_this_run_;
}

void Trainer::write_metrics(const std::string& status) {
  nlohmann::json m = {{"status", status},
                      {"recipe", o_.recipe()},
                      {"classes", data_.ds.classes},
                      {"data", data_.ds.summary()},
                      {"split", data_.split_info.value("counts", nlohmann::json::object())},
                      {"near_duplicates", data_.split_info.value("near_duplicates", nlohmann::json::object())},
                      {"epochs", history_},
                      {"best_epoch", state_.best_epoch + 1},
                      {"best_val_loss", state_.best_val_loss},
                      {"timing",
                       {{"phase1_seconds", state_.phase_seconds[0]},
                        {"phase2_seconds", state_.phase_seconds[1]},
                        {"data", data_.split_info.value("timing", nlohmann::json::object())}}}};
  write_json_atomic(o_.out / "metrics.json", m);
}

TrainResult Trainer::run() {
  validate(o_);
  set_training_threads(o_.threads);
  check_out_dir(o_);
  g_stop = false;

  MaskNetOptions mo;
  mo.hidden = o_.hidden;
  mo.dropout = o_.dropout;
  // Class count is known only after scanning; build the backbone first, the head after.
  MobileNetV2 backbone(0);
  const auto imported = import_tflite(o_.backbone, backbone);
  backbone->eval();
  spdlog::info("backbone {}: {} weights", o_.backbone.string(), imported.weight_format);
  frozen_ = std::make_unique<FrozenBackbone>(backbone, split_stage_);
  data_ = prepare_data(o_, *frozen_, prefix_all_);

  mo.num_classes = static_cast<int>(data_.ds.classes.size());
  torch::manual_seed(o_.seed);
  net_ = MaskNet(mo);
  net_->backbone = net_->replace_module("backbone", backbone);
  net_->freeze_backbone_before(kNumStages);

  train_pos_.assign(data_.images.size(), -1);
  for (size_t r = 0; r < data_.train.size(); ++r) train_pos_[data_.train[r]] = static_cast<int64_t>(r);
  val_prefix_ = prefix_all_.index_select(0, index_tensor(data_.val));
  test_prefix_ = prefix_all_.index_select(0, index_tensor(data_.test));
  val_labels_ = label_tensor(data_.labels, data_.val);
  test_labels_ = label_tensor(data_.labels, data_.test);
  const auto counts = split_counts(data_.ds, data_.assignment.split);
  spdlog::info("split: train {}, val {}, test {} images ({})", data_.train.size(), data_.val.size(),
               data_.test.size(), counts.dump());

  // Resume: loop state, weights, optimizer, metrics history.
  const auto ckpt = o_.out / kCheckpointFile;
  const std::string fingerprint = recipe_fingerprint(o_, data_.ds);
  state_.recipe_sha256 = fingerprint;
  bool resumed = false;
  if (o_.resume && std::filesystem::exists(ckpt)) {
    state_ = read_loop_state(ckpt);
    if (state_.recipe_sha256 != fingerprint)
      throw Error(fmt::format("{} comes from a run with other data or options; use another --out or --force",
                              ckpt.string()));
    if (std::filesystem::exists(o_.out / "metrics.json")) {
      const auto m = read_json(o_.out / "metrics.json", "metrics file");
      for (const auto& e : m.value("epochs", nlohmann::json::array()))
        if (e.value("phase", 0) < state_.phase || (e.value("phase", 0) == state_.phase && e.value("phase_epoch", 0) <= state_.next_epoch))
          history_.push_back(e);
    }
    resumed = true;
    spdlog::info("resuming: phase {}, after epoch {}", state_.phase, state_.next_epoch);
  } else if (o_.resume) {
    spdlog::warn("nothing to resume in {} (no {}): starting a new run", o_.out.string(), kCheckpointFile);
  }

  // Phase 1.
  if (state_.phase == 1 && (state_.next_epoch < o_.epochs)) {
    torch::optim::Adam opt(net_->trainable_parameters(), torch::optim::AdamOptions(o_.lr).eps(1e-7));
    if (resumed) load_checkpoint(ckpt, net_, &opt);
    for (int e = state_.next_epoch; e < o_.epochs; ++e) {
      if (o_.patience && state_.bad_epochs >= o_.patience) {  // checked first so a resumed run stops alike
        spdlog::info("phase 1: no val-loss improvement for {} epochs, stopping early", o_.patience);
        break;
      }
      phase1_epoch(e, opt);
      if (stop_now() || (o_.stop_after_epochs && epochs_this_run_ >= o_.stop_after_epochs)) return {false, {}};
    }
  } else if (resumed) {
    load_checkpoint(ckpt, net_, nullptr);
  }

  // Phase 2.
  if (o_.fine_tune_epochs > 0 && state_.phase <= 2) {
    const bool starting = state_.phase == 1;
    if (starting) {
      // Fine-tune from the best weights so far; a fresh optimizer for the new parameter set.
      if (state_.best_epoch >= 0) load_weights(o_.out / kBestFile, net_);
      state_.phase = 2;
      state_.next_epoch = 0;
      state_.bad_epochs = 0;
    }
    net_->freeze_backbone_before(split_stage_);
    torch::optim::Adam opt(net_->trainable_parameters(), torch::optim::AdamOptions(o_.fine_tune_lr).eps(1e-7));
    if (!starting && state_.next_epoch > 0) load_checkpoint(ckpt, net_, &opt);
    for (int k = state_.next_epoch; k < o_.fine_tune_epochs; ++k) {
      if (o_.patience && state_.bad_epochs >= o_.patience) {
        spdlog::info("phase 2: no val-loss improvement for {} epochs, stopping early", o_.patience);
        break;
      }
      phase2_epoch(k, opt);
      if (stop_now() || (o_.stop_after_epochs && epochs_this_run_ >= o_.stop_after_epochs)) return {false, {}};
    }
  }
  return finish();
}

TrainResult Trainer::finish() {
  // Best weights -> metrics on val and test, export, check the export, plots, card.
  if (state_.best_epoch >= 0) load_weights(o_.out / kBestFile, net_);
  net_->eval();
  const auto val = evaluate(net_, *frozen_, val_prefix_, val_labels_);
  const auto test = evaluate(net_, *frozen_, test_prefix_, test_labels_);

  ModelMeta meta;
  meta.classes = data_.ds.classes;
  OnnxExportOptions eo;
  eo.input_size = o_.input_size;
  const auto onnx_path = o_.out / "model.onnx";
  save_model(onnx_path, net_, meta, eo);  // provisional sidecar; rewritten below with metrics

  // The shipped artifact decides the reported test metrics: run the ONNX file in OpenCV DNN.
  MaskClassifier clf(onnx_path);
  std::vector<int> truth, predicted;
  nlohmann::json predictions = nlohmann::json::array();
  double max_diff = 0;
  int agree = 0;
  for (size_t i = 0; i < data_.test.size(); i += 16) {
    std::vector<cv::Mat> crops;
    std::vector<size_t> idx;
    for (size_t j = i; j < std::min(data_.test.size(), i + 16); ++j) {
      crops.push_back(data_.images[data_.test[j]]);
      idx.push_back(j);
    }
    const auto preds = clf.classify(crops);
    for (size_t j = 0; j < preds.size(); ++j) {
      const size_t t = idx[j], item = data_.test[t];
      truth.push_back(data_.labels[item]);
      predicted.push_back(preds[j].label);
      for (size_t c = 0; c < preds[j].probs.size(); ++c)
        max_diff = std::max(max_diff, std::abs(static_cast<double>(preds[j].probs[c]) -
                                               test.probs[static_cast<int64_t>(t)][static_cast<int64_t>(c)].item<double>()));
      agree += preds[j].label == test.probs[static_cast<int64_t>(t)].argmax().item<int64_t>();
      predictions.push_back({{"image", data_.ds.items[item].rel},
                             {"label", data_.ds.classes[static_cast<size_t>(preds[j].label)]},
                             {"true", data_.ds.classes[static_cast<size_t>(data_.labels[item])]},
                             {"score", preds[j].score}});
    }
  }
  const auto report = classification_report(truth, predicted, data_.ds.classes);
  nlohmann::json test_json = report.to_json();
  test_json["loss"] = test.loss;
  test_json["engine"] = "OpenCV DNN on the exported model.onnx";
  test_json["libtorch_agreement"] = {{"same_label", agree}, {"of", truth.size()}, {"max_abs_prob_diff", max_diff}};
  test_json["predictions"] = predictions;

  const double total_s = state_.phase_seconds[0] + state_.phase_seconds[1];
  nlohmann::json training = {
      {"recipe", o_.recipe()},
      {"data_manifest_sha256", data_.ds.manifest_sha256()},
      {"data", data_.ds.summary()},
      {"split", data_.split_info.value("counts", nlohmann::json::object())},
      {"near_duplicates", data_.split_info.value("near_duplicates", nlohmann::json::object())},
      {"best_epoch", state_.best_epoch + 1},
      {"val", {{"loss", val.loss}, {"accuracy", val.accuracy}, {"n", data_.val.size()}}},
      {"test", {{"accuracy", report.accuracy}, {"balanced_accuracy", report.balanced_accuracy}, {"n", report.n},
                {"confusion", report.confusion}}},
      {"epochs_trained", history_.size()},
      {"train_seconds", total_s}};
  meta.training = training;
  save_model(onnx_path, net_, meta, eo);

  // Curves and confusion matrix.
  CurvePanel acc{"Accuracy", "accuracy", {}, true}, loss{"Loss", "cross-entropy", {}, false};
  std::vector<double> ta, va, tl, vl;
  int fine_tune_start = 0;
  for (const auto& e : history_) {
    ta.push_back(e["train_accuracy"]);
    va.push_back(e["val_accuracy"]);
    tl.push_back(e["train_loss"]);
    vl.push_back(e["val_loss"]);
    if (!fine_tune_start && e["phase"] == 2) fine_tune_start = e["epoch"];
  }
  const cv::Scalar blue(200, 110, 30), orange(20, 140, 240);
  acc.series = {{"train", ta, blue}, {"val", va, orange}};
  loss.series = {{"train", tl, blue}, {"val", vl, orange}};
  save_png(o_.out / "curves.png", draw_curves({acc, loss}, fine_tune_start, "fine-tuning"));
  save_png(o_.out / "confusion.png",
           draw_confusion(report.confusion, data_.ds.classes,
                          fmt::format("test split: {} images, accuracy {:.2f}%", report.n, 100 * report.accuracy)));

  nlohmann::json metrics;
  write_metrics("complete");
  metrics = read_json(o_.out / "metrics.json", "metrics file");
  metrics["val"] = {{"loss", val.loss}, {"accuracy", val.accuracy}, {"n", data_.val.size()}};
  metrics["test"] = test_json;
  metrics["timing"]["total_training_seconds"] = total_s;
  metrics["timing"]["wall_seconds_this_run"] = wall_.ms() / 1000;
  metrics["peak_rss_mib"] = peak_rss_mib();
  metrics["model"] = {{"onnx", onnx_path.string()}, {"onnx_bytes", std::filesystem::file_size(onnx_path)}};
  write_json_atomic(o_.out / "metrics.json", metrics);
  write_model_card(o_.out / "MODEL_CARD.md", metrics, o_.command_line);
  spdlog::info("test accuracy {:.2f}% ({} images), balanced {:.2f}%; model: {}", 100 * report.accuracy, report.n,
               100 * report.balanced_accuracy, onnx_path.string());
  return {true, metrics};
}

}  // namespace

nlohmann::json TrainOptions::recipe() const {
  return {{"backbone", backbone.filename().string()},
          {"epochs", epochs},
          {"fine_tune_epochs", fine_tune_epochs},
          {"batch", batch},
          {"input_size", input_size},
          {"seed", seed},
          {"lr", lr},
          {"fine_tune_lr", fine_tune_lr},
          {"fine_tune_from_block", fine_tune_from_block},
          {"patience", patience},
          {"head", {{"hidden", hidden}, {"dropout", dropout}}},
          {"fractions", {{"train", fractions.train}, {"val", fractions.val}, {"test", fractions.test}}},
          {"augment",
           {{"enabled", augment.enabled},
            {"rotation_deg", augment.rotation_deg},
            {"zoom", augment.zoom},
            {"shift", augment.shift},
            {"shear_deg", augment.shear_deg},
            {"flip", augment.flip}}},
          {"dedup", dedup},
          {"limit_per_class", limit_per_class}};
}

void request_training_stop() { g_stop = true; }

TrainResult train_mask_model(const TrainOptions& options) { return Trainer(options).run(); }

}  // namespace maskwatch
