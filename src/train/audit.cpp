#include "train/audit.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <opencv2/core.hpp>

#include "data/dataset.h"
#include "eval/plots.h"
#include "model/mobilenet_v2_spec.h"
#include "nn/mask_net.h"
#include "nn/tflite_import.h"
#include "train/features.h"
#include "util/error.h"
#include "util/files.h"
#include "util/json_io.h"
#include "util/locked_file.h"
#include "util/progress.h"
#include "util/seed.h"
#include "util/sha256.h"
#include "util/stopwatch.h"

namespace maskwatch {
namespace {

constexpr char kCacheMagic[8] = {'M', 'W', 'F', 'E', 'A', 'T', '1', '\n'};

// Pooled features of every image and its mirror, averaged: [N, 1280]. Starts after the rows of
// `done` (the first images' features, from an interrupted run; may be undefined) and hands the
// rows so far to `save` every 30 s (or 20 times as long as the last save took, for a data set
// so large that rewriting its rows costs more), so an audit stopped here goes on where it was.
torch::Tensor pooled_features(const FrozenBackbone& frozen, const std::vector<cv::Mat>& images, int size,
                              const torch::Tensor& done, const std::function<void(const torch::Tensor&)>& save) {
  ProgressBar bar("features", images.size(), "img");
  std::vector<torch::Tensor> parts;
  size_t start = 0;
  if (done.defined() && done.size(0) > 0) {
    parts.push_back(done);
    start = static_cast<size_t>(done.size(0));
    bar.advance(start);
  }
  Stopwatch since_saved;
  double save_every_s = 30;
  for (size_t i = start; i < images.size(); i += 32) {
    std::vector<cv::Mat> chunk(images.begin() + static_cast<long>(i),
                               images.begin() + static_cast<long>(std::min(images.size(), i + 32)));
    const auto a = frozen.tail_pooled(frozen.prefix_of_images(chunk, size));
    for (auto& m : chunk) cv::flip(m.clone(), m, 1);
    const auto b = frozen.tail_pooled(frozen.prefix_of_images(chunk, size));
    parts.push_back((a + b) / 2);
    bar.advance(chunk.size());
    if (since_saved.seconds() > save_every_s) {
      const Stopwatch saving;
      save(torch::cat(parts, 0));
      save_every_s = std::max(30.0, 20 * saving.seconds());
      since_saved.reset();
    }
  }
  bar.finish();
  return torch::cat(parts, 0);
}

torch::Tensor read_cache(const std::filesystem::path& path, const std::string& key) {
  std::ifstream in(path, std::ios::binary);
  char magic[8];
  std::string stored(64, ' ');
  int64_t rows = 0, cols = 0;
  if (!in.read(magic, 8) || std::memcmp(magic, kCacheMagic, 8) != 0 || !in.read(stored.data(), 64) || stored != key ||
      !in.read(reinterpret_cast<char*>(&rows), 8) || !in.read(reinterpret_cast<char*>(&cols), 8) || rows < 0 ||
      cols <= 0 || rows > (1 << 24) || cols > 65536)
    return {};
  auto t = torch::empty({rows, cols});
  if (!in.read(reinterpret_cast<char*>(t.data_ptr<float>()), static_cast<std::streamsize>(rows * cols * 4))) return {};
  return t;
}

void write_cache(const std::filesystem::path& path, const std::string& key, const torch::Tensor& t) {
  const auto c = t.contiguous();
  std::string bytes(kCacheMagic, 8);
  bytes += key;
  const int64_t rows = c.size(0), cols = c.size(1);
  bytes.append(reinterpret_cast<const char*>(&rows), 8);
  bytes.append(reinterpret_cast<const char*>(&cols), 8);
  bytes.append(reinterpret_cast<const char*>(c.data_ptr<float>()), static_cast<size_t>(rows * cols * 4));
  write_file_atomic(path, bytes);
}

// Out-of-fold probabilities [N, classes] from a head trained on the other folds.
torch::Tensor out_of_fold(const torch::Tensor& x, const std::vector<int>& labels, const std::vector<int>& fold,
                          int folds, int classes, const AuditOptions& o) {
  auto probs = torch::zeros({x.size(0), classes});
  const auto y = torch::tensor(std::vector<int64_t>(labels.begin(), labels.end()), torch::kLong);
  ProgressBar bar("folds", static_cast<size_t>(folds), "fold");
  for (int f = 0; f < folds; ++f) {
    std::vector<int64_t> train, held;
    for (size_t i = 0; i < fold.size(); ++i) (fold[i] == f ? held : train).push_back(static_cast<int64_t>(i));
    if (held.empty() || train.empty()) continue;
    torch::manual_seed(mix_seed(o.seed, 11, static_cast<uint64_t>(f)));
    MaskNet net(MaskNetOptions{classes, 128, 0.5});
    torch::optim::Adam opt(
        std::vector<torch::Tensor>{net->fc1->weight, net->fc1->bias, net->fc2->weight, net->fc2->bias},
        torch::optim::AdamOptions(1e-3));
    const auto xt = x.index_select(0, torch::tensor(train)), yt = y.index_select(0, torch::tensor(train));
    const int64_t n = xt.size(0);
    for (int e = 0; e < o.epochs; ++e) {
      net->train();
      const auto order = torch::randperm(n);
      for (int64_t i = 0; i < n; i += 64) {
        const auto idx = order.slice(0, i, std::min(n, i + 64));
        opt.zero_grad();
        const auto loss =
            torch::nn::functional::cross_entropy(net->head(xt.index_select(0, idx)), yt.index_select(0, idx));
        loss.backward();
        opt.step();
      }
    }
    net->eval();
    torch::NoGradGuard no_grad;
    const auto h = torch::tensor(held);
    probs.index_copy_(0, h, torch::softmax(net->head(x.index_select(0, h)), 1));
    bar.advance(1);
  }
  bar.finish();
  return probs;
}

// Every item must be judged by a head that learnt every class from the other folds: with one
// image of a class (or all of them in one fold) there was none, its items kept probability 0
// and the audit reported accuracy and "label errors" from nothing.
void refuse_folds_without_a_class(const std::vector<int>& labels, const std::vector<int>& fold, int folds,
                                  const std::vector<std::string>& class_names) {
  const size_t classes = class_names.size();
  std::vector<std::vector<int>> per_fold(static_cast<size_t>(folds), std::vector<int>(classes, 0));
  std::vector<int> total(classes, 0);
  for (size_t i = 0; i < labels.size(); ++i) {
    ++per_fold[static_cast<size_t>(fold[i])][static_cast<size_t>(labels[i])];
    ++total[static_cast<size_t>(labels[i])];
  }
  for (const auto& in_fold : per_fold)
    for (size_t c = 0; c < classes; ++c)
      if (total[c] > 0 && total[c] == in_fold[c])
        throw Error(fmt::format("class '{}' has {} image(s), all in one of the {} folds: the images of that fold "
                                "would be judged by a head that never saw the class. The audit needs more images "
                                "of it (tens at least) or fewer --folds",
                                class_names[c], total[c], folds));
  for (size_t c = 0; c < classes; ++c)
    if (total[c] > 0 && total[c] < 10 * folds)
      spdlog::warn("class '{}' has {} image(s): each fold's head learns it from about {}, so its ranks say little",
                   class_names[c], total[c], total[c] * (folds - 1) / folds);
}

// One CSV field: quoted when it holds a comma, a quote or a line break (a class folder named
// "with,mask" or a file name with a newline had split its row).
std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string q = "\"";
  for (char c : text) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

// The crops the features are made of, by their pixels: whatever changed them (the face model,
// its fallback to Haar, the crop margin, a decoder) makes a new key. The key had named the
// data, the backbone and the size only, and reused features of another face model's crops.
std::string crops_sha256(const std::vector<cv::Mat>& images) {
  std::string each;
  each.reserve(images.size() * 64);
  for (const auto& img : images) {
    const cv::Mat c = img.isContinuous() ? img : img.clone();
    each += fmt::format("{}x{}x{}:", c.cols, c.rows, c.type());
    each += c.empty() ? std::string("empty") : sha256_hex(c.data, c.total() * c.elemSize());
  }
  return sha256_hex(each);
}

// Contact-sheet pages of an earlier, longer run (audit-3.png when this run has 2 pages) go:
// they would be taken for this run's.
void remove_pages_after(const std::filesystem::path& dir, size_t pages) {
  std::error_code ec;
  for (size_t page = std::max<size_t>(2, pages + 1);; ++page)
    if (!std::filesystem::remove(dir / fmt::format("audit-{}.png", page), ec)) break;
}

}  // namespace

AuditResult run_audit(const AuditOptions& o) {
  if (o.folds < 2 || o.folds > 20) throw Error("--folds must be 2..20");
  check_input_size(o.input_size);
  check_output_dir(o.out, "--out");  // before the images are decoded, not after
  // Two audits into one folder had both said "ranked list: ..." with one's results in it.
  const FolderLock lock(o.out, ".audit.lock", "audit folder");
  ScanOptions so;
  so.class_map = o.class_map;
  so.exclude_file = o.exclude;
  Dataset ds = scan_datasets(o.data, so);
  LoadOptions lo;
  lo.size = o.input_size;
  lo.face_crops = o.face_crops;
  lo.crop.detector.model = o.face_model;
  const auto images = load_dataset_images(ds, lo);
  const int classes = static_cast<int>(ds.classes.size());
  std::filesystem::create_directories(o.out);

  // Folds: crops of one photo and identical files share a fold, so no item is judged by a
  // head that saw its twin.
  std::vector<int> labels, fold;
  for (const auto& it : ds.items) {
    labels.push_back(it.label);
    const std::string group = it.photo.empty() ? it.sha256 : it.photo;
    fold.push_back(static_cast<int>(mix_seed(o.seed, fnv1a(group)) % static_cast<uint64_t>(o.folds)));
  }
  // Refused before the features are computed: an earlier run's feature cache stays.
  refuse_folds_without_a_class(labels, fold, o.folds, ds.classes);

  AuditResult result;
  result.images = ds.items.size();
  // The backbone by its bytes, not its name: another file under the same name reused stale features.
  const std::string key =
      sha256_hex(fmt::format("{}|{}|{}|{}|{}", ds.manifest_sha256(),
                             sha256_hex(read_file_bytes(o.backbone, "backbone")), o.input_size, o.face_crops,
                             crops_sha256(images)));
  const auto cache = o.out / "features.bin";
  torch::Tensor x = read_cache(cache, key);
  const auto n = static_cast<int64_t>(ds.items.size());
  result.features_from_cache = x.defined() && x.size(0) == n;
  if (!result.features_from_cache) {
    // The same key is the same images in the same order: the rows of an interrupted run are theirs.
    if (x.defined() && x.size(0) > 0 && x.size(0) < n)
      spdlog::info("features: going on from image {} of {} (an interrupted audit's, in {})", x.size(0), n,
                   cache.string());
    else
      x = torch::Tensor();
    MobileNetV2 backbone(0);
    import_tflite(o.backbone, backbone);
    backbone->eval();
    FrozenBackbone frozen(backbone, kNumStages);
    x = pooled_features(frozen, images, o.input_size, x,
                        [&](const torch::Tensor& so_far) { write_cache(cache, key, so_far); });
    write_cache(cache, key, x);
  } else {
    spdlog::info("features reused from {}", cache.string());
  }

  const auto probs = out_of_fold(x, labels, fold, o.folds, classes, o);

  // Per-class threshold: mean out-of-fold probability of a class over the items labelled with it.
  std::vector<double> threshold(static_cast<size_t>(classes), 0), count(static_cast<size_t>(classes), 0);
  for (size_t i = 0; i < labels.size(); ++i) {
    threshold[static_cast<size_t>(labels[i])] += probs[static_cast<int64_t>(i)][labels[i]].item<double>();
    ++count[static_cast<size_t>(labels[i])];
  }
  for (int c = 0; c < classes; ++c) threshold[static_cast<size_t>(c)] /= std::max(1.0, count[static_cast<size_t>(c)]);

  struct Row {
    size_t item;
    int predicted;
    double p_label, p_predicted;
    bool flagged;
  };
  std::vector<Row> rows;
  size_t correct = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    const auto p = probs[static_cast<int64_t>(i)];
    const int pred = static_cast<int>(p.argmax().item<int64_t>());
    const double pl = p[labels[i]].item<double>(), pp = p[pred].item<double>();
    const bool flagged = pred != labels[i] && pp >= threshold[static_cast<size_t>(pred)];
    rows.push_back({i, pred, pl, pp, flagged});
    correct += pred == labels[i];
    auto& [f, n] = result.flagged_per_source[ds.items[i].source];
    f += flagged;
    ++n;
    result.flagged += flagged;
  }
  result.out_of_fold_accuracy = static_cast<double>(correct) / std::max<size_t>(1, labels.size());
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.p_label < b.p_label; });

  std::string csv = "rank,image,source,label,predicted,p_label,p_predicted,fold,flagged\n";
  for (size_t r = 0; r < rows.size(); ++r) {
    const auto& row = rows[r];
    const auto& it = ds.items[row.item];
    csv += fmt::format("{},{},{},{},{},{:.4f},{:.4f},{},{}\n", r + 1, csv_field(it.rel), csv_field(it.source),
                       csv_field(ds.classes[static_cast<size_t>(it.label)]),
                       csv_field(ds.classes[static_cast<size_t>(row.predicted)]), row.p_label, row.p_predicted,
                       fold[row.item], row.flagged ? 1 : 0);
  }
  write_file_atomic(o.out / "audit.csv", csv);

  std::vector<cv::Mat> sheet;
  std::vector<std::string> captions;
  for (size_t r = 0; r < rows.size() && static_cast<int>(sheet.size()) < o.sheet; ++r) {
    const auto& it = ds.items[rows[r].item];
    sheet.push_back(images[rows[r].item]);
    captions.push_back(fmt::format("#{} {}\n-> {} {:.0f}%", r + 1, ds.classes[static_cast<size_t>(it.label)],
                                   ds.classes[static_cast<size_t>(rows[r].predicted)], 100 * rows[r].p_predicted));
  }
  // Pages of 50 (audit.png, audit-2.png, ...): one tall sheet is hard to look through.
  constexpr size_t kPage = 50;
  result.sheet_images = sheet.size();
  result.sheet_pages = (sheet.size() + kPage - 1) / kPage;
  remove_pages_after(o.out, result.sheet_pages);
  for (size_t start = 0, page = 1; start < sheet.size(); start += kPage, ++page) {
    const size_t end = std::min(sheet.size(), start + kPage);
    const std::vector<cv::Mat> imgs(sheet.begin() + static_cast<long>(start), sheet.begin() + static_cast<long>(end));
    const std::vector<std::string> caps(captions.begin() + static_cast<long>(start),
                                        captions.begin() + static_cast<long>(end));
    save_png(o.out / (page == 1 ? std::string("audit.png") : fmt::format("audit-{}.png", page)),
             draw_montage(imgs, caps, 128, 10));
  }

  nlohmann::json per_source = nlohmann::json::object();
  for (const auto& [s, fn] : result.flagged_per_source) per_source[s] = {{"flagged", fn.first}, {"images", fn.second}};
  write_json_atomic(o.out / "audit.json", {{"images", result.images},
                                           {"folds", o.folds},
                                           {"out_of_fold_accuracy", result.out_of_fold_accuracy},
                                           {"class_thresholds", threshold},
                                           {"flagged", result.flagged},
                                           {"flagged_per_source", per_source},
                                           {"manifest_sha256", ds.manifest_sha256()}});
  return result;
}

}  // namespace maskwatch
