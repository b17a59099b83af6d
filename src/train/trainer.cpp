#include "train/trainer.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <atomic>
#include <cmath>
#include <optional>

#include "eval/calibration.h"
#include "eval/condition_eval.h"
#include "eval/gate_fit.h"
#include "eval/plots.h"
#include "model/preprocess.h"
#include "nn/mask_net.h"
#include "nn/onnx_export.h"
#include "nn/tflite_import.h"
#include "nn/torch_setup.h"
#include "perf/timing.h"
#include "train/batch_loader.h"
#include "train/checkpoint.h"
#include "train/features.h"
#include "train/model_card.h"
#include "train/prepare_data.h"
#include "util/files.h"
#include "util/error.h"
#include "util/json_io.h"
#include "util/paths.h"
#include "util/progress.h"
#include "util/seed.h"
#include "util/sha256.h"
#include "util/stopwatch.h"
#include "vision/mask_classifier.h"
#include "vision/overlay.h"

namespace maskwatch {
namespace {

std::atomic<bool> g_stop{false};
constexpr const char* kCheckpointFile = "checkpoint.pt";
constexpr const char* kBestFile = "best.pt";

// Fewer validation images than this give a temperature that mostly fits noise (with no
// validation error at all the NLL keeps falling as T -> 0).
constexpr size_t kMinCalibrationImages = 100;

struct StopRequested {};  // unwinds out of the epoch loops when a stop was asked for

torch::Tensor index_tensor(const std::vector<size_t>& idx) {
  return torch::tensor(std::vector<int64_t>(idx.begin(), idx.end()), torch::kLong);
}

torch::Tensor label_tensor(const std::vector<int>& labels, const std::vector<size_t>& idx) {
  std::vector<int64_t> v;
  for (size_t i : idx) v.push_back(labels[i]);
  return torch::tensor(v, torch::kLong);
}

Rows to_rows(const torch::Tensor& t) {
  const auto c = t.to(torch::kFloat32).contiguous();
  Rows rows(static_cast<size_t>(c.size(0)));
  for (int64_t i = 0; i < c.size(0); ++i) {
    const float* p = c[i].data_ptr<float>();
    rows[static_cast<size_t>(i)].assign(p, p + c.size(1));
  }
  return rows;
}

std::vector<int> argmax_rows(const Rows& rows) {
  std::vector<int> out;
  for (const auto& r : rows) out.push_back(static_cast<int>(std::max_element(r.begin(), r.end()) - r.begin()));
  return out;
}

void check_out_dir(const TrainOptions& o) {
  const bool has_run =
      std::filesystem::exists(o.out / kCheckpointFile) || std::filesystem::exists(o.out / "model.onnx");
  if (has_run && !o.resume && !o.force)
    throw Error(fmt::format("{} already holds a training run: use --resume to continue it or --force to start over",
                            o.out.string()));
  check_output_dir(o.out, "--out");  // writable, before the data is decoded
}

// The options of the complete run in `out` (model.onnx, and metrics.json saying so), or nullopt.
std::optional<nlohmann::json> completed_recipe(const std::filesystem::path& out) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(out / "model.onnx", ec) || !std::filesystem::exists(out / "metrics.json", ec))
    return std::nullopt;
  const auto m = read_json(out / "metrics.json", "metrics file");
  if (m.value("status", "") != "complete") return std::nullopt;
  return m.value("recipe", nlohmann::json());
}

// --force: the previous run's files go once the new run's inputs have loaded (backbone, data,
// split), not before: a mistyped --data must not cost the old model. From here on the old
// model would not match the new split.json, so it goes too.
void remove_previous_run(const TrainOptions& o) {
  if (!o.force || o.resume) return;
  for (const char* f : {kCheckpointFile, kBestFile, "metrics.json", "model.onnx", "model.json"})
    std::filesystem::remove(o.out / f);
}

void validate(const TrainOptions& o) {
  check_input_size(o.input_size);
  if (o.data.empty()) throw Error("no training data: give --data DIR (repeatable)");
  for (const auto& d : o.data) refuse_output_inside(o.out, d, "--out");
  for (const auto& b : o.baseline_models) {  // loaded before training, not after it
    if (!std::filesystem::is_regular_file(b)) throw Error("--baseline-model " + b.string() + ": no such file");
    MaskClassifier check(b);
  }
  if (o.epochs < 0 || o.fine_tune_epochs < 0 || o.epochs + o.fine_tune_epochs == 0)
    throw Error("nothing to train: --epochs and --fine-tune-epochs are both 0");
  if (o.epochs == 0) throw Error("--epochs must be at least 1 (phase 1 trains the head that phase 2 starts from)");
  if (o.batch < 1) throw Error("--batch must be at least 1");
  if (o.views < 1) throw Error("--views must be at least 1");
  if (o.fine_tune_from_block < 0 || o.fine_tune_from_block > 16) throw Error("--fine-tune-from-block must be 0..16");
  if (o.lr <= 0 || o.fine_tune_lr <= 0) throw Error("learning rates must be positive");
  for (const auto& [source, w] : o.source_weights)
    if (!TrainOptions::valid_source_weight(w))
      throw Error(fmt::format("--source-weight {}={}: the weight must be {}", source, w, TrainOptions::kSourceWeightRule));
}

struct EpochStats {
  double loss = 0, correct = 0, n = 0;
  void add(const torch::Tensor& logits, const torch::Tensor& labels, const torch::Tensor& loss_value) {
    const double b = static_cast<double>(labels.size(0));
    loss += loss_value.item<double>() * b;
    correct += logits.argmax(1).eq(labels).sum().item<double>();
    n += b;
  }
  std::string status() const { return n ? fmt::format("loss {:.4f} acc {:.2f}%", loss / n, 100 * correct / n) : ""; }
};

class Trainer {
 public:
  explicit Trainer(const TrainOptions& o) : o_(o), split_stage_(o.fine_tune_from_block + 1) {}
  TrainResult run();
  // The run failed: its metrics.json (only one this run wrote, never a previous run's) says so.
  void mark_failed(const std::string& why) {
    if (!wrote_metrics_) return;
    metrics_.status = "failed: " + why;
    try {
      write_metrics();
    } catch (const std::exception&) {  // the error being reported matters more
    }
  }

 private:
  // One augmented view of every training image through the frozen backbone: the prefix
  // features (what phase 2 trains on) and the pooled features (what phase 1 trains on).
  struct View {
    torch::Tensor prefix, pooled;  // rows = positions in data_.train
  };
  View& view(int v);
  bool phase2_uses_view(int v) const { return v < std::min(o_.views, o_.fine_tune_epochs); }
  // Batches of training-split rows for one epoch: each row appears about its source's weight
  // times, shuffled; drawn from (seed, phase, epoch) so a resumed run repeats them.
  std::vector<std::vector<size_t>> epoch_batches(int phase, int epoch) const;
  void phase1_epoch(int e, torch::optim::Adam& opt);
  void phase2_epoch(int k, torch::optim::Adam& opt);
  void end_epoch(int phase, int epoch, const EpochStats& s, double seconds, double lr, torch::optim::Optimizer& opt);
  double val_loss_and_accuracy(double* accuracy);
  void write_metrics();
  TrainResult stopped();  // a stop was asked for: metrics.json says so
  void stop_if_asked() const {
    if (g_stop.load()) throw StopRequested{};
  }

  // The end of training, one job each.
  TrainResult finish();
  void calibrate(const torch::Tensor& val_logits, const torch::Tensor& test_logits);
  SplitEvaluation evaluate_items(const std::string& model, const std::vector<size_t>& items,
                                 const std::vector<int>& predicted) const;
  void export_and_test(const torch::Tensor& test_probs);
  void fit_quality_gate();
  void evaluate_baselines();
  void save_sidecar();
  void write_plots(const torch::Tensor& test_logits);

  const TrainOptions& o_;
  int split_stage_;
  MaskNet net_{nullptr};
  std::unique_ptr<FrozenBackbone> frozen_;
  PreparedData data_;
  torch::Tensor val_prefix_, test_prefix_, val_labels_, test_labels_, train_labels_;
  torch::Tensor val_pooled_;          // phase 1 only: the tail is frozen, so val features never change
  std::vector<double> train_weight_;  // per training row
  std::map<int, View> views_;
  LoopState state_;
  TrainingMetrics metrics_;
  int epochs_this_run_ = 0;
  bool wrote_metrics_ = false;
  Stopwatch wall_;
  ModelMeta meta_;
};

Trainer::View& Trainer::view(int v) {
  if (auto it = views_.find(v); it != views_.end()) return it->second;
  Stopwatch sw;
  const int64_t n = static_cast<int64_t>(data_.train.size());
  View out;
  out.pooled = torch::empty({n, kFeatureChannels});
  const bool keep_prefix = o_.fine_tune_epochs > 0 && phase2_uses_view(v);

  // In dataset order: with the backbone frozen, an image's features do not depend on its batch.
  BatchLoader loader(data_.images, make_batches(data_.train, o_.batch), o_.augment,
                     mix_seed(o_.seed, 1, static_cast<uint64_t>(v)), o_.input_size, o_.smooth_noisy);
  ProgressBar bar(fmt::format("augmented view {}/{}", v + 1, o_.views), data_.train.size(), "img");
  int64_t row = 0;
  for (Batch b; loader.next(b);) {
    const auto pre = frozen_->prefix(b.images);
    const int64_t m = pre.size(0);
    if (keep_prefix && !out.prefix.defined()) out.prefix = torch::empty({n, pre.size(1), pre.size(2), pre.size(3)});
    if (keep_prefix) out.prefix.slice(0, row, row + m).copy_(pre);
    out.pooled.slice(0, row, row + m).copy_(frozen_->tail_pooled(pre));
    row += m;
    bar.advance(static_cast<size_t>(m));
    stop_if_asked();
  }
  bar.finish();
  metrics_.timing.views_s += sw.seconds();
  return views_[v] = out;
}

std::vector<std::vector<size_t>> Trainer::epoch_batches(int phase, int epoch) const {
  const uint64_t seed = mix_seed(o_.seed, static_cast<uint64_t>(phase), static_cast<uint64_t>(epoch));
  std::vector<size_t> rows;
  for (size_t r = 0; r < data_.train.size(); ++r) {
    const double w = train_weight_[r];
    int copies = static_cast<int>(std::floor(w));
    if (w > copies && SeededStream{mix_seed(seed, r, 0x77)}.chance(w - copies)) ++copies;
    rows.insert(rows.end(), static_cast<size_t>(copies), r);
  }
  return make_batches(seeded_shuffle(rows, seed), o_.batch);
}

void Trainer::phase1_epoch(int e, torch::optim::Adam& opt) {
  Stopwatch sw;
  const View& v = view(e % o_.views);
  torch::manual_seed(mix_seed(o_.seed, 1, static_cast<uint64_t>(e)));  // dropout masks
  EpochStats stats;
  for (const auto& batch : epoch_batches(1, e)) {
    const auto rows = index_tensor(batch);
    const auto labels = train_labels_.index_select(0, rows);
    net_->set_training(true);
    opt.zero_grad();
    const auto logits = net_->head(v.pooled.index_select(0, rows));
    const auto loss = torch::nn::functional::cross_entropy(logits, labels);
    loss.backward();
    opt.step();
    stats.add(logits.detach(), labels, loss.detach());
    stop_if_asked();
  }
  spdlog::debug("phase 1 epoch {}: {}", e + 1, stats.status());
  end_epoch(1, e, stats, sw.seconds(), o_.lr, opt);
}

void Trainer::phase2_epoch(int k, torch::optim::Adam& opt) {
  Stopwatch sw;
  const int v = k % o_.views;
  const torch::Tensor feats = view(v).prefix;
  torch::manual_seed(mix_seed(o_.seed, 2, static_cast<uint64_t>(k)));
  const auto batches = epoch_batches(2, k);
  size_t total = 0;
  for (const auto& b : batches) total += b.size();
  ProgressBar bar(fmt::format("phase 2 epoch {}/{}", k + 1, o_.fine_tune_epochs), total, "img");
  EpochStats stats;
  for (const auto& batch : batches) {
    const auto rows = index_tensor(batch);
    const auto x = feats.index_select(0, rows).contiguous(torch::MemoryFormat::ChannelsLast);
    const auto labels = train_labels_.index_select(0, rows);
    net_->set_training(true);
    opt.zero_grad();
    const auto logits =
        net_->head(MaskNet::Impl::pool(net_->backbone->forward_stages(x, split_stage_, kNumStages - 1)));
    const auto loss = torch::nn::functional::cross_entropy(logits, labels);
    loss.backward();
    opt.step();
    stats.add(logits.detach(), labels, loss.detach());
    bar.advance(batch.size(), stats.status());
    stop_if_asked();
  }
  bar.finish(stats.status());
  if (k + o_.views >= o_.fine_tune_epochs) views_.erase(v);  // no later epoch uses this view
  end_epoch(2, k, stats, sw.seconds(), o_.fine_tune_lr, opt);
}

double Trainer::val_loss_and_accuracy(double* accuracy) {
  *accuracy = 0;
  if (data_.val.empty()) return 0;
  net_->eval();
  torch::NoGradGuard no_grad;
  const auto pooled = state_.phase == 1 && val_pooled_.defined() ? val_pooled_ : frozen_->tail_pooled(val_prefix_);
  const auto logits = net_->head(pooled);
  *accuracy = logits.argmax(1).eq(val_labels_).to(torch::kFloat64).mean().item<double>();
  return torch::nn::functional::cross_entropy(logits, val_labels_).item<double>();
}

void Trainer::end_epoch(int phase, int epoch, const EpochStats& s, double seconds, double lr,
                        torch::optim::Optimizer& opt) {
  EpochRecord r;
  r.val_loss = val_loss_and_accuracy(&r.val_accuracy);
  const int global = static_cast<int>(metrics_.epochs.size());
  const bool improved = !data_.val.empty() ? r.val_loss < state_.best_val_loss : true;
  if (improved) {
    state_.best_val_loss = data_.val.empty() ? s.loss / s.n : r.val_loss;
    state_.best_epoch = global;
    state_.bad_epochs = 0;
    save_weights(o_.out / kBestFile, net_);
  } else {
    ++state_.bad_epochs;
  }
  r.epoch = global + 1;
  r.phase = phase;
  r.phase_epoch = epoch + 1;
  r.train_loss = s.loss / s.n;
  r.train_accuracy = s.correct / s.n;
  r.learning_rate = lr;
  r.seconds = seconds;
  r.images_per_second = s.n / std::max(seconds, 1e-9);
  r.best_so_far = improved;
  metrics_.epochs.push_back(r);
  spdlog::info("phase {} epoch {}: train loss {:.4f} acc {:.2f}% | val loss {:.4f} acc {:.2f}%{}", phase, epoch + 1,
               r.train_loss, 100 * r.train_accuracy, r.val_loss, 100 * r.val_accuracy, improved ? " (best)" : "");
  state_.phase_seconds[phase - 1] += seconds;
  state_.phase = phase;
  state_.next_epoch = epoch + 1;
  save_checkpoint(o_.out / kCheckpointFile, net_, opt, state_);
  write_metrics();
  ++epochs_this_run_;
}

TrainResult Trainer::stopped() {
  metrics_.status = "stopped: continue with --resume";  // not "running" for ever
  write_metrics();
  return {false, metrics_};
}

void Trainer::write_metrics() {
  metrics_.best_epoch = state_.best_epoch + 1;
  metrics_.best_val_loss = state_.best_val_loss;
  metrics_.timing.phase1_s = state_.phase_seconds[0];
  metrics_.timing.phase2_s = state_.phase_seconds[1];
  metrics_.timing.wall_s = wall_.seconds();
  metrics_.peak_rss_mib = peak_rss_mib();
  write_json_atomic(o_.out / "metrics.json", metrics_.to_json());
  wrote_metrics_ = true;
}

TrainResult Trainer::run() {
  validate(o_);
  setup_training_compute(o_.threads);
  check_out_dir(o_);
  // A resume of a complete run has nothing to train. Finishing it again rewrote model.json and
  // the model card from the run's own state, and lost what came after (a gate that `eval
  // --fit-gate` had fitted). Decided before the data is decoded.
  if (const auto done = o_.resume ? completed_recipe(o_.out) : std::nullopt) {
    // Compared as written: metrics.json replaces bytes that are not UTF-8 (a folder's name).
    const auto written = [](const nlohmann::json& j) {
      return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    };
    if (written(*done) != written(o_.recipe()))
      throw Error(fmt::format("{} holds a complete run of other options (or of another maskwatch version); give "
                              "another --out (--force would replace that model)",
                              o_.out.string()));
    TrainResult result;
    result.completed = result.already_complete = true;
    return result;
  }
  g_stop = false;

  // Class count is known only after scanning; build the backbone first, the head after.
  MobileNetV2 backbone(0);
  const auto imported = import_tflite(o_.backbone, backbone);
  backbone->eval();
  spdlog::info("backbone {}: {} weights", o_.backbone.string(), imported.weight_format);
  frozen_ = std::make_unique<FrozenBackbone>(backbone, split_stage_);
  data_ = prepare_data(o_, *frozen_, metrics_.timing);
  remove_previous_run(o_);

  MaskNetOptions mo;
  mo.hidden = o_.hidden;
  mo.dropout = o_.dropout;
  mo.num_classes = static_cast<int>(data_.ds.classes.size());
  torch::manual_seed(o_.seed);
  net_ = MaskNet(mo);
  net_->backbone = net_->replace_module("backbone", backbone);
  net_->freeze_backbone_before(kNumStages);

  val_prefix_ = data_.val_prefix;
  test_prefix_ = data_.test_prefix;
  data_.val_prefix = data_.test_prefix = torch::Tensor();
  val_labels_ = label_tensor(data_.labels, data_.val);
  test_labels_ = label_tensor(data_.labels, data_.test);
  train_labels_ = label_tensor(data_.labels, data_.train);
  for (size_t i : data_.train) train_weight_.push_back(data_.ds.weight_of(data_.ds.items[i], o_.source_weights));
  if (!data_.val.empty()) val_pooled_ = frozen_->tail_pooled(val_prefix_);
  metrics_.recipe = o_.recipe();
  metrics_.classes = data_.ds.classes;
  metrics_.data = data_.ds.summary();
  metrics_.split = {{"counts", data_.split_info.value("counts", nlohmann::json::object())},
                    {"counts_by_source", data_.split_info.value("counts_by_source", nlohmann::json::object())}};
  metrics_.near_duplicates = data_.split_info.value("near_duplicates", nlohmann::json::object());
  spdlog::info("split: train {}, val {}, test {} images", data_.train.size(), data_.val.size(), data_.test.size());

  // Resume: loop state, weights, optimizer, metrics history.
  const auto ckpt = o_.out / kCheckpointFile;
  const std::string fingerprint = sha256_hex(o_.recipe().dump() + data_.ds.manifest_sha256());
  state_.recipe_sha256 = fingerprint;
  bool resumed = false;
  if (o_.resume && std::filesystem::exists(ckpt)) {
    state_ = read_loop_state(ckpt);
    if (state_.recipe_sha256 != fingerprint)
      throw Error(
          fmt::format("{} comes from a run with other data or options; use another --out or --force", ckpt.string()));
    if (std::filesystem::exists(o_.out / "metrics.json")) {
      const auto m = read_json(o_.out / "metrics.json", "metrics file");
      for (const auto& e : m.value("epochs", nlohmann::json::array())) {
        const auto r = EpochRecord::from_json(e);
        if (r.phase < state_.phase || (r.phase == state_.phase && r.phase_epoch <= state_.next_epoch))
          metrics_.epochs.push_back(r);
      }
    }
    resumed = true;
    metrics_.timing.resumed = true;
    spdlog::info("resuming: phase {}, after epoch {}", state_.phase, state_.next_epoch);
  } else if (o_.resume) {
    spdlog::warn("nothing to resume in {} (no {}): starting a new run", o_.out.string(), kCheckpointFile);
  }

  const auto stop_asked = [&] { return o_.stop_after_epochs && epochs_this_run_ >= o_.stop_after_epochs; };
  try {
    // Phase 1.
    if (state_.phase == 1 && state_.next_epoch < o_.epochs) {
      torch::optim::Adam opt(net_->trainable_parameters(), torch::optim::AdamOptions(o_.lr).eps(1e-7));
      if (resumed) load_checkpoint(ckpt, net_, &opt);
      for (int e = state_.next_epoch; e < o_.epochs; ++e) {
        if (o_.patience && state_.bad_epochs >= o_.patience) {  // checked first so a resumed run stops alike
          spdlog::info("phase 1: no val-loss improvement for {} epochs, stopping early", o_.patience);
          break;
        }
        phase1_epoch(e, opt);
        if (stop_asked()) return stopped();
      }
    } else if (resumed) {
      load_checkpoint(ckpt, net_, nullptr);
    }
    for (auto& entry : views_) entry.second.pooled = torch::Tensor();  // phase 2 needs only prefixes

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
        if (stop_asked()) return stopped();
      }
    }
  } catch (const StopRequested&) {
    return stopped();
  }
  views_.clear();
  return finish();
}

void Trainer::calibrate(const torch::Tensor& val_logits, const torch::Tensor& test_logits) {
  auto& c = metrics_.calibration;
  if (!o_.calibrate) {
    c.skipped = "--no-calibrate";
    return;
  }
  if (data_.val.size() < kMinCalibrationImages) {
    c.skipped = fmt::format("{} validation images, fewer than {}", data_.val.size(), kMinCalibrationImages);
    spdlog::info("calibration skipped: {} (temperature stays 1)", c.skipped);
    return;
  }
  const auto val_rows = to_rows(val_logits), test_rows = to_rows(test_logits);
  std::vector<int> val_truth, test_truth;
  for (size_t i : data_.val) val_truth.push_back(data_.labels[i]);
  for (size_t i : data_.test) test_truth.push_back(data_.labels[i]);
  c.temperature = fit_temperature(val_rows, val_truth);
  c.val_nll_before = mean_nll(val_rows, val_truth, 1.0);
  c.val_nll_after = mean_nll(val_rows, val_truth, c.temperature);
  c.val_ece_before = reliability(softmax_rows(val_rows), val_truth).ece;
  c.val_ece_after = reliability(softmax_rows(val_rows, c.temperature), val_truth).ece;
  if (!test_rows.empty()) {
    c.test_ece_before = reliability(softmax_rows(test_rows), test_truth).ece;
    c.test_ece_after = reliability(softmax_rows(test_rows, c.temperature), test_truth).ece;
  }
  // Fold 1/T into the last layer: the exported model then outputs calibrated probabilities.
  torch::NoGradGuard no_grad;
  net_->fc2->weight.div_(c.temperature);
  net_->fc2->bias.div_(c.temperature);
  spdlog::info("calibration: temperature {:.3f}; validation ECE {:.4f} -> {:.4f}, NLL {:.4f} -> {:.4f}", c.temperature,
               c.val_ece_before, c.val_ece_after, c.val_nll_before, c.val_nll_after);
}

SplitEvaluation Trainer::evaluate_items(const std::string& model, const std::vector<size_t>& items,
                                        const std::vector<int>& predicted) const {
  SplitEvaluation ev;
  ev.model = model;
  std::vector<int> truth;
  std::vector<std::string> sources;
  for (size_t i : items) {
    truth.push_back(data_.labels[i]);
    sources.push_back(data_.ds.items[i].source);
  }
  ev.overall = classification_report(truth, predicted, data_.ds.classes);
  ev.per_source = grouped_reports(truth, predicted, sources, data_.ds.classes);
  return ev;
}

void Trainer::export_and_test(const torch::Tensor& test_probs) {
  OnnxExportOptions eo;
  eo.input_size = o_.input_size;
  const auto onnx_path = o_.out / "model.onnx";
  meta_.classes = data_.ds.classes;
  meta_.input_size = o_.input_size;
  save_model(onnx_path, net_, meta_, eo);  // provisional sidecar; save_sidecar adds the metrics
  meta_ = ModelMeta::load(sidecar_path(onnx_path));
  metrics_.onnx_path = onnx_path.string();
  metrics_.onnx_bytes = std::filesystem::file_size(onnx_path);

  // The shipped artifact decides the reported test metrics: run the ONNX file as `run` does
  // (MaskClassifier: XNNPACK, or OpenCV DNN where XNNPACK cannot build it).
  MaskClassifier clf(onnx_path);
  std::vector<cv::Mat> crops;
  for (size_t i : data_.test) crops.push_back(data_.images[i]);
  const auto preds = clf.classify_batched(crops);
  // Export parity on the very pixels LibTorch saw: classify() smooths grainy faces first
  // (model/face_quality.h), which is the product's behaviour but not the export's.
  cv::Mat raw_probs;
  for (size_t i = 0; i < crops.size(); i += 16) {
    const std::vector<cv::Mat> part(crops.begin() + static_cast<long>(i),
                                    crops.begin() + static_cast<long>(std::min(crops.size(), i + 16)));
    raw_probs.push_back(clf.forward_blob(make_blob(part, clf.input_size())));
  }
  std::vector<int> predicted;
  for (size_t t = 0; t < preds.size(); ++t) {
    const size_t item = data_.test[t];
    predicted.push_back(preds[t].label);
    int raw_label = 0;
    for (int c = 0; c < raw_probs.cols; ++c) {
      const double p = raw_probs.at<float>(static_cast<int>(t), c);
      if (p > raw_probs.at<float>(static_cast<int>(t), raw_label)) raw_label = c;
      metrics_.libtorch_max_abs_prob_diff =
          std::max(metrics_.libtorch_max_abs_prob_diff,
                   std::abs(p - test_probs[static_cast<int64_t>(t)][static_cast<int64_t>(c)].item<double>()));
    }
    metrics_.libtorch_same_label += raw_label == test_probs[static_cast<int64_t>(t)].argmax().item<int64_t>();
    metrics_.test_predictions.push_back({{"image", data_.ds.items[item].rel},
                                         {"source", data_.ds.items[item].source},
                                         {"label", data_.ds.classes[static_cast<size_t>(preds[t].label)]},
                                         {"true", data_.ds.classes[static_cast<size_t>(data_.labels[item])]},
                                         {"score", preds[t].score}});
  }
  metrics_.test = evaluate_items("this model (ONNX, as run uses it)", data_.test, predicted);
}

// The quality gate (model/face_quality.h) on the validation crops under the conditions that
// matter most for it (the clean crops, each kind of damage at its worst, and the dim webcam
// its threshold is set on): 5 of the 17, to keep the recipe short. A failed fit (a run too
// small to have wrong answers) leaves the model without a gate, with a warning.
void Trainer::fit_quality_gate() {
  if (!o_.quality_gate || data_.val.empty()) return;
  static const std::vector<std::string> kConditions = {"clean", "noise", "jpeg 20", "low-res 24", "dim webcam"};
  Stopwatch sw;
  ConditionInputs in;
  // A three-class model's gate judges what run, serve and their counts use: a mask worn or not.
  in.fold = compliance_fold(data_.ds.classes, mask_class_index(data_.ds.classes));
  for (size_t i : data_.val) {
    in.crops.push_back(data_.images[i]);
    in.labels.push_back(in.fold.of_model.at(static_cast<size_t>(data_.labels[i])));  // the identity for two classes
    in.sources.push_back(data_.ds.items[i].source);
    in.seeds.push_back(fnv1a(data_.ds.items[i].rel));
  }
  MaskClassifier clf(o_.out / "model.onnx");
  std::vector<GateSample> samples;
  auto report = evaluate_conditions(clf, in, 16, nullptr, &samples, kConditions);
  FittedGate fitted;
  try {
    fitted = fit_gate_on_report(report, samples, in.fold);
  } catch (const Error& e) {
    // A run too small to have wrong answers, or no threshold reaching the target on a small or
    // hard validation split (a gate that would make every face uncertain): none kept.
    spdlog::warn("no quality gate ({} on this run's {} validation images); every face is answered", e.what(),
                 data_.val.size());
    metrics_.quality_gate = {{"skipped", e.what()}};
    return;
  }
  QualityGate& gate = fitted.gate;
  const auto& at = report.results[fitted.at];
  gate.fit["data"] = "this run's validation split";
  meta_.quality_gate = gate;
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& c : report.results)
    rows.push_back({{"name", c.name},
                    {"coverage", c.answered.coverage},
                    {"answered_balanced_accuracy", c.answered.balanced},
                    {"balanced_accuracy", c.report.balanced_accuracy}});
  metrics_.quality_gate = {{"threshold", gate.threshold}, {"weights", gate.weights}, {"conditions", rows},
                           {"seconds", sw.seconds()}};
  if (!gate.judged_classes.empty()) metrics_.quality_gate["judges"] = gate.judged_classes;
  spdlog::info("quality gate: answer when P(right) >= {:.3f}; dim webcam on validation {:.1f}% answered, {:.2f}% of "
               "those right (balanced), {:.0f} s",
               gate.threshold, 100 * at.answered.coverage, 100 * at.answered.balanced, sw.seconds());
}

void Trainer::evaluate_baselines() {
  for (const auto& path : o_.baseline_models) {
    MaskClassifier clf(path);
    if (clf.classes() != data_.ds.classes) {
      spdlog::warn("baseline {} has other classes ({}): not compared", path.string(), fmt::join(clf.classes(), ", "));
      continue;
    }
    // The baseline sees the test images cropped the same way, at its own input size.
    Dataset test_ds = data_.ds;
    test_ds.items.clear();
    for (size_t i : data_.test) test_ds.items.push_back(data_.ds.items[i]);
    auto lo = load_options(o_);
    lo.size = clf.input_size();
    lo.show_progress = false;
    const auto images = load_dataset_images(test_ds, lo);
    if (images.size() != data_.test.size()) throw Error("baseline evaluation: test images changed on disk");
    std::vector<int> predicted;
    for (const auto& p : clf.classify_batched(images)) predicted.push_back(p.label);
    metrics_.baselines.push_back(evaluate_items(path.string(), data_.test, predicted));
    spdlog::info("baseline {}: balanced accuracy {:.2f}% on the test split", path.string(),
                 100 * metrics_.baselines.back().overall.balanced_accuracy);
  }
}

void Trainer::save_sidecar() {
  nlohmann::json per_source = nlohmann::json::object();
  for (const auto& [s, r] : metrics_.test.per_source)
    per_source[s] = {{"n", r.n}, {"accuracy", r.accuracy}, {"balanced_accuracy", r.balanced_accuracy}};
  meta_.temperature = metrics_.calibration.temperature;
  meta_.crop = {{"face_detector", o_.face_crops ? "YuNet" : ModelMeta::kWholeImage}, {"margin", 0.5}};
  meta_.training = {
      {"recipe", o_.recipe()},
      {"data_manifest_sha256", data_.ds.manifest_sha256()},
      {"data", data_.ds.summary()},
      {"split", metrics_.split},
      {"near_duplicates", metrics_.near_duplicates},
      {"best_epoch", metrics_.best_epoch},
      {"val",
       {{"loss", metrics_.val_loss}, {"accuracy", metrics_.val.overall.accuracy}, {"n", metrics_.val.overall.n}}},
      {"test",
       {{"accuracy", metrics_.test.overall.accuracy},
        {"balanced_accuracy", metrics_.test.overall.balanced_accuracy},
        {"n", metrics_.test.overall.n},
        {"confusion", metrics_.test.overall.confusion},
        {"per_source", per_source}}},
      {"calibration", metrics_.calibration.to_json()},
      {"epochs_trained", metrics_.epochs.size()},
      {"train_seconds", state_.phase_seconds[0] + state_.phase_seconds[1]}};
  OnnxExportOptions eo;
  eo.input_size = o_.input_size;
  save_model(o_.out / "model.onnx", net_, meta_, eo);
}

void Trainer::write_plots(const torch::Tensor& test_logits) {
  CurvePanel acc{"Accuracy", "accuracy", {}, true}, loss{"Loss", "cross-entropy", {}, false};
  std::vector<double> ta, va, tl, vl;
  int fine_tune_start = 0;
  for (const auto& e : metrics_.epochs) {
    ta.push_back(e.train_accuracy);
    va.push_back(e.val_accuracy);
    tl.push_back(e.train_loss);
    vl.push_back(e.val_loss);
    if (!fine_tune_start && e.phase == 2) fine_tune_start = e.epoch;
  }
  const cv::Scalar blue(200, 110, 30), orange(20, 140, 240);
  acc.series = {{"train", ta, blue}, {"val", va, orange}};
  loss.series = {{"train", tl, blue}, {"val", vl, orange}};
  save_png(o_.out / "curves.png", draw_curves({acc, loss}, fine_tune_start, "fine-tuning"));
  const auto& t = metrics_.test.overall;
  save_png(o_.out / "confusion.png",
           draw_confusion(t.confusion, data_.ds.classes,
                          fmt::format("test split: {} images, accuracy {:.2f}%", t.n, 100 * t.accuracy)));
  if (data_.test.empty()) return;
  // Reliability of the test split before and after calibration.
  const auto rows = to_rows(test_logits);
  std::vector<int> truth;
  for (size_t i : data_.test) truth.push_back(data_.labels[i]);
  const double temp = metrics_.calibration.temperature;
  const auto before = reliability(softmax_rows(rows), truth), after = reliability(softmax_rows(rows, temp), truth);
  save_png(o_.out / "reliability.png",
           draw_xy_chart(fmt::format("test split: ECE {:.4f} -> {:.4f} (T = {:.2f})", before.ece, after.ece, temp),
                         "confidence (top class)", "accuracy",
                         {{"uncalibrated", before.confidence, before.accuracy, cv::Scalar(60, 60, 210), true, false},
                          {"calibrated", after.confidence, after.accuracy, cv::Scalar(200, 110, 30), true, false}},
                         true, true));
}

TrainResult Trainer::finish() {
  Stopwatch sw;
  // A resume of a finished run trains no epoch: take the best epoch from the checkpoint state.
  metrics_.best_epoch = state_.best_epoch + 1;
  metrics_.best_val_loss = state_.best_val_loss;
  if (state_.best_epoch >= 0) load_weights(o_.out / kBestFile, net_);
  net_->eval();
  torch::Tensor val_logits, test_logits;
  {
    torch::NoGradGuard no_grad;
    val_logits = data_.val.empty() ? torch::empty({0, 2}) : net_->head(frozen_->tail_pooled(val_prefix_));
    test_logits = data_.test.empty() ? torch::empty({0, 2}) : net_->head(frozen_->tail_pooled(test_prefix_));
  }
  calibrate(val_logits, test_logits);
  const double temp = metrics_.calibration.temperature;
  if (!data_.val.empty()) {
    metrics_.val_loss = torch::nn::functional::cross_entropy(val_logits / temp, val_labels_).item<double>();
    metrics_.val = evaluate_items("this model (LibTorch)", data_.val, argmax_rows(to_rows(val_logits)));
  }
  export_and_test(torch::softmax(test_logits / temp, 1));
  fit_quality_gate();
  evaluate_baselines();
  save_sidecar();
  write_plots(test_logits);

  metrics_.status = "complete";
  metrics_.timing.finish_s = sw.seconds();
  write_metrics();
  write_model_card(o_.out / "MODEL_CARD.md", metrics_, o_.command_line);
  const auto& t = metrics_.test.overall;
  if (t.n == 0)  // not "0.00 %": nothing was measured (--test-fraction 0, or too few images)
    spdlog::warn("no test images: this model's accuracy is not measured; model: {}", metrics_.onnx_path);
  else
    spdlog::info("test accuracy {:.2f}% ({} images), balanced {:.2f}%; model: {}", 100 * t.accuracy, t.n,
                 100 * t.balanced_accuracy, metrics_.onnx_path);
  for (size_t c = 0; c < t.per_class.size() && t.n > 0; ++c)
    if (t.per_class[c].n == 0)  // balanced accuracy averages the classes present: say which is not
      spdlog::warn("the test split holds no {} image: its accuracy is not measured (more data, or a larger "
                   "--test-fraction)",
                   t.classes[c]);
  return {true, metrics_};
}

}  // namespace

nlohmann::json TrainOptions::recipe() const {
  nlohmann::json roots = nlohmann::json::array();
  for (const auto& d : data) roots.push_back(std::filesystem::path(d).lexically_normal().filename().string());
  const auto& p = augment.photo;
  return {{"backbone", backbone.filename().string()},
          {"data", roots},
          {"class_map", class_map},
          {"source_weights", source_weights},
          {"exclude", exclude.empty() ? "" : exclude.filename().string()},
          {"face_crops", face_crops},
          {"epochs", epochs},
          {"fine_tune_epochs", fine_tune_epochs},
          {"views", views},
          {"batch", batch},
          {"input_size", input_size},
          {"seed", seed},
          {"lr", lr},
          {"fine_tune_lr", fine_tune_lr},
          {"fine_tune_from_block", fine_tune_from_block},
          {"patience", patience},
          {"head", {{"hidden", hidden}, {"dropout", dropout}}},
          {"calibrate", calibrate},
          {"fractions", {{"train", fractions.train}, {"val", fractions.val}, {"test", fractions.test}}},
          {"augment",
           {{"enabled", augment.enabled},
            {"rotation_deg", augment.rotation_deg},
            {"zoom", augment.zoom},
            {"shift", augment.shift},
            {"shear_deg", augment.shear_deg},
            {"flip", augment.flip},
            {"photo",
             {{"enabled", p.enabled},
              {"brightness", p.brightness},
              {"contrast", p.contrast},
              {"saturation", p.saturation},
              {"gray_p", p.gray_p},
              {"downscale_p", p.downscale_p},
              {"blur_p", p.blur_p},
              {"noise_p", p.noise_p},
              {"jpeg_p", p.jpeg_p},
              {"dim_p", p.dim_p}}}}},
          {"smooth_noisy", smooth_noisy},
          {"dedup", dedup},
          {"limit_per_class", limit_per_class}};
}

void request_training_stop() { g_stop = true; }

TrainResult train_mask_model(const TrainOptions& options) {
  Trainer trainer(options);
  try {
    return trainer.run();
  } catch (const std::exception& e) {
    trainer.mark_failed(e.what());
    throw;
  }
}

void use_default_training_data(TrainOptions& o) {
  o.data = {default_seed_data_path(), default_real_data_path(), default_incorrect_data_path()};
  const std::string folder = "mask_worn_incorrectly";
  if (!o.class_map.count(folder)) o.class_map[folder] = "without_mask";
  if (o.class_map[folder] != folder) {  // folded: its images are a source of their own
    const std::string source = "jolignier/" + folder;
    if (!o.source_weights.count(source)) o.source_weights[source] = kIncorrectWeight;
  }
}

}  // namespace maskwatch
