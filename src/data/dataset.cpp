#include "data/dataset.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <mutex>
#include <opencv2/core/utility.hpp>
#include <map>
#include <set>

#include "media/image_io.h"
#include "model/preprocess.h"
#include "util/error.h"
#include "util/files.h"
#include "util/progress.h"
#include "util/sha256.h"
#include "util/strings.h"

namespace maskwatch {

namespace {

// A training image whose smaller side is under this is said (the crops are scaled to 224 or
// 160: 16 px is already 14x blown up).
constexpr int kSmallestUsefulSide = 16;

// "a.jpg, b.jpg, ..." (or "a.jpg: why; b.jpg: why; ...") for a warning: the first five.
std::string first_five(const std::vector<SkippedImage>& images, bool with_reasons) {
  const char* sep = with_reasons ? "; " : ", ";
  std::string out;
  for (size_t i = 0; i < images.size() && i < 5; ++i)
    out += (i ? sep : "") + images[i].rel + (with_reasons ? ": " + images[i].reason : "");
  return out + (images.size() > 5 ? std::string(sep) + "..." : "");
}

// Well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
bool is_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    uint32_t cp = n == 1 ? c : c & (0xFF >> (n + 1));
    for (size_t k = 1; k < n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d >> 6) != 0x2) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += n;
  }
  return true;
}

std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> cells(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"')
        cells.back() += '"', ++i;
      else if (c == '"')
        quoted = false;
      else
        cells.back() += c;
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      cells.emplace_back();
    } else if (c != '\r') {
      cells.back() += c;
    }
  }
  return cells;
}

// MANIFEST.csv: file (relative to the data folder) -> "repo:path" of the original photo.
std::map<std::string, std::string> read_photo_keys(const std::filesystem::path& root) {
  std::map<std::string, std::string> keys;
  std::ifstream in(root / "MANIFEST.csv");
  std::string line;
  if (!in || !std::getline(in, line)) return keys;
  const auto header = split_csv_line(line);
  const auto col = [&](const char* name) {
    const auto it = std::find(header.begin(), header.end(), name);
    return it == header.end() ? -1 : static_cast<int>(it - header.begin());
  };
  const int file = col("file"), repo = col("repo"), path = col("path");
  if (file < 0 || path < 0) return keys;
  while (std::getline(in, line)) {
    const auto cells = split_csv_line(line);
    if (static_cast<int>(cells.size()) <= std::max({file, repo, path})) continue;
    keys[cells[static_cast<size_t>(file)]] =
        (repo >= 0 ? cells[static_cast<size_t>(repo)] + ":" : std::string()) + cells[static_cast<size_t>(path)];
  }
  return keys;
}

std::string source_of(const std::string& file_name, const std::string& root_name) {
  const auto pos = file_name.find("__");
  return pos != std::string::npos && pos > 0 ? file_name.substr(0, pos) : root_name;
}

std::string root_name(const std::filesystem::path& dir) {
  auto p = dir;
  if (p.filename().empty()) p = p.parent_path();  // "data/" -> "data"
  std::string name = p.filename().string();
  if (name.empty() || name == "." || name == "..") name = std::filesystem::weakly_canonical(p).filename().string();
  return name;
}

void apply_exclusions(Dataset& ds, const std::filesystem::path& file, const std::set<std::string>& root_names) {
  // Read whole: a folder or a missing file is an error here, not an empty list.
  const std::string text = read_file_text(file, "exclude file");
  if (text.find('\0') != std::string::npos)
    throw Error(fmt::format("exclude file {} is not a text file (one data-folder/class/file per line)", file.string()));
  std::istringstream in(text);
  std::set<std::string> drop;
  std::set<std::string> present;
  for (const auto& it : ds.items) present.insert(it.rel);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    const auto hash = line.find('#');
    const std::string rel = trim(hash == std::string::npos ? line : line.substr(0, hash));
    if (rel.empty()) continue;
    const std::string root = rel.substr(0, rel.find('/'));
    if (!root_names.count(root)) {
      ++ds.exclude_lines_for_other_folders;
      continue;
    }
    if (!present.count(rel))
      throw Error(fmt::format("exclude file {} line {}: '{}' names no image in the data", file.string(), n, rel));
    drop.insert(rel);
  }
  std::vector<DatasetItem> kept;
  for (auto& it : ds.items)
    if (!drop.count(it.rel)) kept.push_back(std::move(it));
  ds.excluded = ds.items.size() - kept.size();
  ds.items = std::move(kept);
  // Said either way: a file whose lines all name other folders (or lack the folder's name)
  // had left everything in without a word.
  if (ds.excluded)
    spdlog::info("left out {} image(s) listed in {}", ds.excluded, file.string());
  else if (ds.exclude_lines_for_other_folders)
    spdlog::warn("exclude file {}: none of its {} line(s) names an image in {} (a line is FOLDER/CLASS/FILE, FOLDER "
                 "being a --data folder's name)",
                 file.string(), ds.exclude_lines_for_other_folders, fmt::join(root_names, ", "));
}

}  // namespace

std::pair<std::string, std::string> parse_class_mapping(const std::string& spec) {
  const auto eq = spec.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size() || spec.find('=', eq + 1) != std::string::npos)
    throw Error(fmt::format("'{}': expected FROM=TO (a name, '=', and what it stands for)", spec));
  return {spec.substr(0, eq), spec.substr(eq + 1)};
}

std::map<std::string, std::string> parse_class_mappings(const std::vector<std::string>& specs) {
  std::map<std::string, std::string> maps;
  for (const auto& spec : specs) {
    const auto [from, to] = parse_class_mapping(spec);
    const auto [at, added] = maps.emplace(from, to);
    if (!added && at->second != to)
      throw Error(fmt::format("--map {}: '{}' is already mapped to '{}'", spec, from, at->second));
  }
  return maps;
}

std::vector<int> Dataset::class_counts() const {
  std::vector<int> counts(classes.size(), 0);
  for (const auto& it : items) ++counts[static_cast<size_t>(it.label)];
  return counts;
}

std::vector<std::string> Dataset::sources() const {
  std::set<std::string> s;
  for (const auto& it : items) s.insert(it.source);
  return {s.begin(), s.end()};
}

std::string Dataset::source_and_class(const DatasetItem& item) const {
  return item.source + "/" + classes.at(static_cast<size_t>(item.label));
}

double Dataset::weight_of(const DatasetItem& item, const std::map<std::string, double>& weights) const {
  if (const auto it = weights.find(item.source); it != weights.end()) return it->second;
  const auto it = weights.find(source_and_class(item));
  return it == weights.end() ? 1.0 : it->second;
}

bool Dataset::has_weight_key(const std::string& key) const {
  return std::any_of(items.begin(), items.end(),
                     [&](const DatasetItem& it) { return it.source == key || source_and_class(it) == key; });
}

std::string Dataset::manifest_text() const {
  std::string text;
  for (const auto& it : items) text += fmt::format("{}\t{}\t{}\n", it.label, it.rel, it.sha256);
  return text;
}

std::string Dataset::manifest_sha256() const { return sha256_hex(manifest_text()); }

nlohmann::json Dataset::summary() const {
  nlohmann::json per_class = nlohmann::json::object();
  const auto counts = class_counts();
  for (size_t c = 0; c < classes.size(); ++c) per_class[classes[c]] = counts[c];
  nlohmann::json per_source = nlohmann::json::object(), crops = nlohmann::json::object();
  const auto bump = [](nlohmann::json& counts, const std::string& key) {
    counts[key] = counts.contains(key) ? counts[key].get<int>() + 1 : 1;
  };
  for (const auto& it : items) {
    bump(per_source[it.source], classes[static_cast<size_t>(it.label)]);
    bump(crops[it.source], crop_kind_name(it.crop));
  }
  nlohmann::json skipped_list = nlohmann::json::array();
  for (const auto& s : skipped) skipped_list.push_back({{"image", s.rel}, {"reason", s.reason}});
  nlohmann::json doubtful_list = nlohmann::json::array();
  for (const auto& s : doubtful) doubtful_list.push_back({{"image", s.rel}, {"reason", s.reason}});
  nlohmann::json root_list = nlohmann::json::array();
  for (const auto& r : roots) root_list.push_back(r.string());
  return {{"roots", root_list},
          {"classes", classes},
          {"class_map", class_map},
          {"images", items.size()},
          {"per_class", per_class},
          {"per_source", per_source},
          {"crops", crops},
          {"skipped_count", skipped.size()},
          {"skipped", skipped_list},
          {"used_with_warning", doubtful_list},
          {"excluded", excluded},
          {"ignored_non_image_files", ignored_files},
          {"manifest_sha256", manifest_sha256()}};
}

Dataset scan_datasets(const std::vector<std::filesystem::path>& dirs, const ScanOptions& o) {
  if (dirs.empty()) throw Error("no data folder given (--data DIR)");
  Dataset ds;
  ds.roots = dirs;
  ds.class_map = o.class_map;
  const auto mapped = [&](const std::string& folder) {
    const auto it = o.class_map.find(folder);
    return it == o.class_map.end() ? folder : it->second;
  };
  // Class folders of every data folder.
  struct Folder {
    std::filesystem::path dir;
    std::string root, cls;
    std::string folded;  // the class folder's own name when --map folds it into another class
  };
  std::vector<Folder> folders;
  std::set<std::string> names, folder_names;
  std::set<std::string> root_names;
  std::map<std::filesystem::path, std::filesystem::path> real_dirs;  // where each folder really is
  for (const auto& dir : dirs) {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) throw Error("data folder not found: " + dir.string());
    // The same folder under two names (a link) would count every image twice.
    const auto [seen, fresh] = real_dirs.emplace(std::filesystem::canonical(dir, ec), dir);
    if (!ec && !fresh)
      throw Error(fmt::format("data folders {} and {} are the same folder: its images would count twice",
                              seen->second.string(), dir.string()));
    const std::string root = root_name(dir);
    if (!root_names.insert(root).second)
      throw Error(fmt::format("two data folders are named '{}': item names would collide (rename one)", root));
    std::vector<std::string> sub;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
      std::error_code ec2;
      if (e.is_directory(ec2) && e.path().filename().string()[0] != '.') sub.push_back(e.path().filename().string());
    }
    if (ec) throw Error("cannot list " + dir.string() + ": " + ec.message());
    if (sub.empty())
      throw Error(fmt::format("{}: no class folders (expected one sub-folder of images per class)", dir.string()));
    std::sort(sub.begin(), sub.end());
    for (const auto& s : sub) {
      folder_names.insert(s);
      names.insert(mapped(s));
      folders.push_back({dir / s, root, mapped(s), mapped(s) == s ? std::string() : s});
    }
  }
  for (const auto& [from, to] : o.class_map)
    if (!folder_names.count(from))
      throw Error(fmt::format("--map {}={}: no data folder has a class folder named '{}'", from, to, from));
  if (o.classes.empty()) {
    ds.classes.assign(names.begin(), names.end());
  } else {
    ds.classes = o.classes;
    for (const auto& f : folders)
      if (std::find(o.classes.begin(), o.classes.end(), f.cls) == o.classes.end())
        throw Error(fmt::format("{}: class '{}' is not one of the model's classes ({}){}", f.dir.string(), f.cls,
                                fmt::join(o.classes, ", "), o.class_map.empty() ? "; fold it with --map" : ""));
  }
  if (names.size() < o.min_classes)  // (with --map folding two folders into one, the classes are what counts)
    throw Error(fmt::format("{}: found {} class(es){}, need at least {} (one sub-folder per class)",
                            dirs.size() == 1 ? dirs[0].string() : "the data folders", names.size(),
                            o.class_map.empty() ? "" : fmt::format(" in {} class folder(s) after --map", folders.size()),
                            o.min_classes));
  std::map<std::string, std::map<std::string, std::string>> photo_keys;
  for (const auto& f : folders) {
    const int label = static_cast<int>(std::find(ds.classes.begin(), ds.classes.end(), f.cls) - ds.classes.begin());
    const auto root_dir = f.dir.parent_path();
    if (!photo_keys.count(f.root)) photo_keys[f.root] = read_photo_keys(root_dir);
    const auto& keys = photo_keys[f.root];
    std::vector<std::filesystem::path> files;
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(
             f.dir, std::filesystem::directory_options::skip_permission_denied, ec);
         it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) break;
      std::error_code ec2;
      if (it->is_symlink(ec2) && it->is_directory(ec2)) {
        // Not followed (a link back up would loop for ever): said, so a folder of links is not
        // a silently smaller dataset.
        spdlog::warn("{}: a link to a folder, not followed (its images are not read)", it->path().string());
        continue;
      }
      if (!it->is_regular_file(ec2)) {
        // A link to nothing named like an image had been left out without a word.
        if (it->is_symlink(ec2) && is_image_file(it->path()))
          spdlog::warn("{}: skipped, a link to a file that is not there", it->path().string());
        continue;
      }
      if (!is_image_file(it->path())) {
        ++ds.ignored_files;
      } else if (!is_utf8(it->path().string())) {
        // split.json (JSON is UTF-8) could not name it, so a run with it could not be resumed.
        spdlog::warn("{}: skipped, its name is not UTF-8 (rename it)", it->path().string());
        ++ds.ignored_files;
      } else {
        files.push_back(it->path());
      }
    }
    std::sort(files.begin(), files.end());
    if (files.empty()) throw Error(fmt::format("class folder {} holds no image file", f.dir.string()));
    for (const auto& file : files) {
      const std::string in_root =
          file.lexically_relative(root_dir).generic_string();  // not relative(): it follows symlinks
      DatasetItem item;
      item.rel = f.root + "/" + in_root;
      item.path = file;
      item.label = label;
      item.source = source_of(file.filename().string(), f.root);
      // A folded folder is its own source ("jolignier/mask_worn_incorrectly"): its images are
      // reported apart (how many are not called the other class) and can be weighted apart.
      if (!f.folded.empty()) item.source += "/" + f.folded;
      if (const auto k = keys.find(in_root); k != keys.end()) item.photo = k->second;
      ds.items.push_back(std::move(item));
    }
  }
  std::sort(ds.items.begin(), ds.items.end(), [](const DatasetItem& a, const DatasetItem& b) {
    return a.label != b.label ? a.label < b.label : a.rel < b.rel;
  });
  if (!o.exclude_file.empty()) apply_exclusions(ds, o.exclude_file, root_names);
  return ds;
}

std::vector<cv::Mat> load_dataset_images(Dataset& ds, const LoadOptions& o) {
  const auto counts_before = ds.class_counts();
  std::vector<cv::Mat> images(ds.items.size());
  std::vector<std::string> errors(ds.items.size());
  std::vector<std::string> doubts(ds.items.size());  // used, but the user should know
  ProgressBar bar(o.face_crops ? "decode + faces" : "decode", ds.items.size(), "img");
  std::mutex bar_mutex;
  // One face detector per worker (YuNet nets are not shared between threads); items are
  // dealt out round-robin, so the result does not depend on thread timing.
  const int workers = std::max(1, std::min(cv::getNumThreads(), static_cast<int>(ds.items.size())));
  cv::parallel_for_(cv::Range(0, workers), [&](const cv::Range& r) {
    for (int w = r.start; w < r.end; ++w) {
      std::unique_ptr<FaceDetector> detector;
      if (o.face_crops) detector = std::make_unique<FaceDetector>(o.crop.detector);
      for (size_t i = static_cast<size_t>(w); i < ds.items.size(); i += static_cast<size_t>(workers)) {
        auto& item = ds.items[i];
        std::string why;
        std::vector<uint8_t> bytes;
        try {
          bytes = read_file_bytes(item.path, "image");
        } catch (const Error& e) {
          why = e.what();
        }
        std::string damage;
        cv::Mat img = why.empty() ? decode_image(bytes, &why, &damage) : cv::Mat();
        if (!img.empty()) {
          if (!damage.empty())
            doubts[i] = damage;
          else if (std::min(img.cols, img.rows) < kSmallestUsefulSide)
            doubts[i] = fmt::format("{}x{} px, too small to show a face", img.cols, img.rows);
          item.sha256 = sha256_hex(bytes);
          cv::Mat view = center_square(img);
          item.crop = CropKind::NoFace;
          if (detector) {
            const auto crop = choose_training_crop(img, *detector, o.crop);
            view = img(crop.rect);
            item.crop = crop.kind;
          }
          images[i] = resize_square(view, o.size).clone();
        } else {
          errors[i] = why;
        }
        if (o.show_progress) {
          std::lock_guard<std::mutex> lock(bar_mutex);
          bar.advance(1);
        }
      }
    }
  });
  if (o.show_progress) bar.finish();
  // Drop failures, keeping order.
  std::vector<DatasetItem> kept;
  std::vector<cv::Mat> kept_images;
  for (size_t i = 0; i < ds.items.size(); ++i) {
    if (images[i].empty()) {
      ds.skipped.push_back({ds.items[i].rel, errors[i]});
      continue;
    }
    if (!doubts[i].empty()) ds.doubtful.push_back({ds.items[i].rel, doubts[i]});
    kept.push_back(std::move(ds.items[i]));
    kept_images.push_back(std::move(images[i]));
  }
  ds.items = std::move(kept);
  if (!ds.skipped.empty())
    spdlog::warn("skipped {} image(s) that could not be decoded: {}", ds.skipped.size(),
                 first_five(ds.skipped, /*with_reasons=*/false));
  // Used as they are (dropping them would change a split that names them), but said: a
  // half-grey or 1-pixel "face" teaches nothing and usually means a broken download.
  if (!ds.doubtful.empty())
    spdlog::warn("{} image(s) used that look broken: {} (remove or replace them)", ds.doubtful.size(),
                 first_five(ds.doubtful, /*with_reasons=*/true));
  if (o.face_crops) {
    size_t no_face = 0;
    for (const auto& it : ds.items) no_face += it.crop == CropKind::NoFace;
    if (no_face)
      spdlog::info("no face found in {} of {} images: their centred square is used instead", no_face, ds.items.size());
  }
  const auto counts = ds.class_counts();
  for (size_t c = 0; c < counts.size() && o.require_every_class; ++c)
    if (counts[c] == 0 && counts_before[c] > 0)
      throw Error(fmt::format("class '{}' has no usable image (all failed to decode)", ds.classes[c]));
  return kept_images;
}

}  // namespace maskwatch
