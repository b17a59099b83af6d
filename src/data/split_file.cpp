#include "data/split_file.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <map>

#include "util/error.h"
#include "util/json_io.h"

namespace maskwatch {

nlohmann::json split_counts(const Dataset& ds, const std::vector<Split>& split) {
  nlohmann::json out = nlohmann::json::object();
  for (Split s : {Split::Train, Split::Val, Split::Test}) {
    nlohmann::json per = nlohmann::json::object();
    for (const auto& c : ds.classes) per[c] = 0;
    for (size_t i = 0; i < ds.items.size(); ++i)
      if (split[i] == s)
        per[ds.classes[static_cast<size_t>(ds.items[i].label)]] =
            per[ds.classes[static_cast<size_t>(ds.items[i].label)]].get<int>() + 1;
    out[split_name(s)] = per;
  }
  return out;
}

nlohmann::json split_counts_by_source(const Dataset& ds, const std::vector<Split>& split) {
  nlohmann::json out = nlohmann::json::object();
  for (size_t i = 0; i < ds.items.size(); ++i) {
    auto& cell = out[split_name(split[i])][ds.items[i].source];
    const auto& cls = ds.classes[static_cast<size_t>(ds.items[i].label)];
    cell[cls] = cell.contains(cls) ? cell[cls].get<int>() + 1 : 1;
  }
  return out;
}

nlohmann::json split_to_json(const Dataset& ds, const SplitAssignment& a, const nlohmann::json& extra) {
  nlohmann::json items = nlohmann::json::array();
  for (size_t i = 0; i < ds.items.size(); ++i)
    items.push_back({{"image", ds.items[i].rel},
                     {"label", ds.classes[static_cast<size_t>(ds.items[i].label)]},
                     {"split", split_name(a.split[i])},
                     {"group", a.group[i]}});
  nlohmann::json j = extra;
  j["manifest_sha256"] = ds.manifest_sha256();
  j["classes"] = ds.classes;
  j["counts"] = split_counts(ds, a.split);
  j["counts_by_source"] = split_counts_by_source(ds, a.split);
  j["items"] = items;
  return j;
}

SplitAssignment split_from_json(const nlohmann::json& j, const Dataset& ds, const std::string& origin) {
  if (!j.is_object()) throw Error(fmt::format("{}: malformed split file (not a JSON object)", origin));
  // Other data than the split was made for is fine when every image is one it lists (more
  // exclusions, a class folded with --map, a third class): recipes are then compared on one
  // split. An image it does not list is an error below.
  if (j.value("manifest_sha256", "") != ds.manifest_sha256())
    spdlog::info("{} was made for other data (exclusions, class map or classes differ): reusing its assignment of "
                 "the images it lists",
                 origin);
  std::map<std::string, std::pair<Split, int>> by_name;
  std::map<int, std::pair<Split, std::string>> group_home;  // each group's subset, by its first image
  try {
    for (const auto& it : j.at("items")) {
      const std::string s = it.at("split").get<std::string>();
      const Split sp = s == "train"  ? Split::Train
                       : s == "val"  ? Split::Val
                       : s == "test" ? Split::Test
                                     : throw Error("bad split '" + s + "'");
      const std::string image = it.at("image").get<std::string>();
      const int group = it.at("group").get<int>();
      // A hand-edited file can hold what the trainer never writes: checked, since either
      // would score test images the model trained on (or a near copy of them).
      if (!by_name.emplace(image, std::make_pair(sp, group)).second)
        throw Error(fmt::format("{} is listed twice", image));
      const auto [home, fresh] = group_home.emplace(group, std::make_pair(sp, image));
      if (!fresh && home->second.first != sp)
        throw Error(fmt::format("group {} is in two subsets ({} in {}, {} in {}): a group's near-duplicates must "
                                "stay in one subset (a file merged from two runs needs its groups numbered apart)",
                                group, home->second.second, split_name(home->second.first), image, s));
    }
  } catch (const std::exception& e) {
    throw Error(fmt::format("{}: malformed split file ({})", origin, e.what()));
  }
  SplitAssignment a;
  for (const auto& item : ds.items) {
    const auto it = by_name.find(item.rel);
    if (it == by_name.end()) throw Error(fmt::format("{} does not list {}", origin, item.rel));
    a.split.push_back(it->second.first);
    a.group.push_back(it->second.second);
  }
  return a;
}

std::vector<std::string> split_members(const nlohmann::json& j, Split which, const std::string& origin) {
  std::vector<std::string> out;
  try {
    for (const auto& it : j.at("items"))
      if (it.at("split").get<std::string>() == split_name(which)) out.push_back(it.at("image").get<std::string>());
  } catch (const std::exception& e) {
    throw Error(fmt::format("{}: malformed split file ({})", origin, e.what()));
  }
  return out;
}

std::set<std::string> unseen_scenes(const std::string& split) {
  const auto j = read_json(split, "split file");
  const auto scene_of = [](const std::string& rel) -> std::string {
    const auto name = rel.substr(rel.rfind('/') + 1);
    const auto at = name.find("__JPEGImages_");
    const auto last = name.rfind('_');
    if (at == std::string::npos || last == std::string::npos || last <= at + 13) return {};
    return name.substr(at + 13, last - at - 13) + ".jpg";
  };
  std::set<std::string> test, seen;
  for (const auto which : {Split::Train, Split::Val})
    for (const auto& m : split_members(j, which, split))
      if (auto s = scene_of(m); !s.empty()) seen.insert(s);
  for (const auto& m : split_members(j, Split::Test, split))
    if (auto s = scene_of(m); !s.empty() && !seen.count(s)) test.insert(s);
  if (test.empty())
    throw Error(fmt::format("{}: no scene crops (...__JPEGImages_<scene>_<k>.jpg) in its test subset", split));
  return test;
}

}  // namespace maskwatch
