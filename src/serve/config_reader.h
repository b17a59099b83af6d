// Reading a serve config file's YAML one mapping at a time: typed values by key with
// file:line errors, an error for every key nobody asked for and for a key given twice, and the
// text rules every key shares (${VAR} expansion, secrets, paths relative to the file).
#pragma once
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "util/error.h"

namespace maskwatch {

// Reads one YAML mapping: typed values by key, and an error for every key nobody asked for.
class MapReader {
 public:
  MapReader(const YAML::Node& node, std::string where, const std::string& file)
      : node_(node), where_(std::move(where)), file_(file) {
    if (node_ && !node_.IsNull() && !node_.IsMap())
      fail(node_, fmt::format("{} must be a mapping of keys to values", where_));
    check_unique_keys();
  }

  [[noreturn]] void fail(const YAML::Node& at, const std::string& what) const {
    throw Error(fmt::format("{}:{}: {}", file_, at.Mark().line + 1, what));
  }

  YAML::Node child(const std::string& key) {
    known_.insert(key);
    return node_ && node_.IsMap() ? node_[key] : YAML::Node();
  }

  template <class T>
  void get(const std::string& key, T& out) {
    const YAML::Node v = child(key);
    if (!v || v.IsNull()) return;
    if (!v.IsScalar()) fail(v, fmt::format("{}.{} must be a single value", where_, key));
    try {
      out = v.as<T>();
    } catch (const YAML::Exception&) {
      fail(v, fmt::format("{}.{}: '{}' is not {}", where_, key, v.Scalar(), type_name<T>()));
    }
    // YAML's .nan and .inf are numbers to yaml-cpp; NaN would pass every range check.
    if constexpr (std::is_floating_point_v<T>)
      if (!std::isfinite(out)) fail(v, fmt::format("{}.{}: '{}' is not a finite number", where_, key, v.Scalar()));
  }

  template <class T>
  void get_range(const std::string& key, T& out, T lo, T hi) {
    get(key, out);
    if (out < lo || out > hi) fail(child(key), fmt::format("{}.{} must be between {} and {}", where_, key, lo, hi));
  }

  template <class T>
  void get_list(const std::string& key, std::vector<T>& out) {
    const YAML::Node v = child(key);
    if (!v || v.IsNull()) return;
    if (v.IsScalar()) {
      out.clear();
      T one{};
      get(key, one);
      out.push_back(one);
      return;
    }
    if (!v.IsSequence()) fail(v, fmt::format("{}.{} must be a list", where_, key));
    out.clear();
    for (const auto& item : v) {
      try {
        out.push_back(item.as<T>());
      } catch (const YAML::Exception&) {
        fail(item, fmt::format("{}.{}: '{}' is not {}", where_, key, item.Scalar(), type_name<T>()));
      }
    }
  }

  void finish() const {
    if (!node_ || !node_.IsMap()) return;
    for (const auto& kv : node_) {
      const auto key = kv.first.as<std::string>();
      if (!known_.count(key)) {
        std::vector<std::string> names(known_.begin(), known_.end());
        fail(kv.first, fmt::format("unknown key '{}' in {} (known: {})", key, where_, fmt::join(names, ", ")));
      }
    }
  }

  const std::string& file() const { return file_; }
  const std::string& where() const { return where_; }

 private:
  // yaml-cpp keeps both entries of a repeated key (a lookup finds the first, iteration
  // sees both): a second `demo:` camera would silently make two cameras of one name.
  void check_unique_keys() const {
    if (!node_ || !node_.IsMap()) return;
    std::map<std::string, int> first_line;
    for (const auto& kv : node_) {
      const auto [it, fresh] = first_line.emplace(kv.first.Scalar(), kv.first.Mark().line + 1);
      if (!fresh)
        fail(kv.first, fmt::format("duplicate key '{}' in {} (first at line {})", it->first, where_, it->second));
    }
  }

  template <class T>
  static const char* type_name() {
    if constexpr (std::is_same_v<T, bool>)
      return "true or false";
    else if constexpr (std::is_integral_v<T>)
      return "a whole number";
    else if constexpr (std::is_floating_point_v<T>)
      return "a number";
    else
      return "text";
  }
  YAML::Node node_;
  std::string where_, file_;
  std::set<std::string> known_;
};

// ${NAME} -> the environment variable (MASKWATCH_SHARED defaults to the configured shared folder).
std::string expand(const std::string& s, const MapReader& r, const YAML::Node& at);
// A path relative to the config file's folder (URLs stay as they are).
std::string resolve(const std::string& value, const std::filesystem::path& base);
// A camera's source: a path as above, but a webcam index stays one (as open_source reads it:
// "0" is a webcam, "1234" a file).
std::string resolve_source(const std::string& value, const std::filesystem::path& base);
// A secret given inline (where ${VAR} expands, as in every other text key) or through
// `<key>_env: VARIABLE`, not both. An empty variable is an error: an `EnvironmentFile` line
// `TOKEN=` would otherwise turn the secret, and with it the login, off without a word.
void read_secret(MapReader& r, const std::string& key, std::string& out);

}  // namespace maskwatch
