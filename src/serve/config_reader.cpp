#include "serve/config_reader.h"

#include <cstdlib>
#include <regex>

#include "util/paths.h"
#include "vision/source.h"

namespace maskwatch {

std::string expand(const std::string& s, const MapReader& r, const YAML::Node& at) {
  static const std::regex var(R"(\$\{([A-Za-z_][A-Za-z0-9_]*)\})");
  std::string out;
  auto begin = std::sregex_iterator(s.begin(), s.end(), var);
  size_t last = 0;
  for (auto it = begin; it != std::sregex_iterator(); ++it) {
    const std::string name = (*it)[1];
    const char* env = std::getenv(name.c_str());
    std::string value;
    if (env)
      value = env;
    else if (name == "MASKWATCH_SHARED")
      value = shared_data_dir().string();
    else
      r.fail(at, fmt::format("{}: environment variable {} is not set", r.where(), name));
    out += s.substr(last, static_cast<size_t>(it->position()) - last) + value;
    last = static_cast<size_t>(it->position() + it->length());
  }
  return out + s.substr(last);
}

std::string resolve(const std::string& value, const std::filesystem::path& base) {
  if (value.empty() || is_url_spec(value)) return value;
  std::filesystem::path p(value);
  return p.is_absolute() ? value : (base / p).lexically_normal().string();
}

std::string resolve_source(const std::string& value, const std::filesystem::path& base) {
  return is_webcam_index(value) ? value : resolve(value, base);
}

void read_secret(MapReader& r, const std::string& key, std::string& out) {
  std::string inline_value;
  r.get(key, inline_value);
  std::string env;
  r.get(key + "_env", env);
  if (!env.empty() && !inline_value.empty())
    r.fail(r.child(key), fmt::format("{}: give {} or {}_env, not both", r.where(), key, key));
  if (env.empty()) {
    if (!inline_value.empty()) out = expand(inline_value, r, r.child(key));
    return;
  }
  const char* v = std::getenv(env.c_str());
  if (!v)
    r.fail(r.child(key + "_env"), fmt::format("{}.{}_env: environment variable {} is not set", r.where(), key, env));
  if (!*v)
    r.fail(r.child(key + "_env"), fmt::format("{}.{}_env: environment variable {} is empty", r.where(), key, env));
  out = v;
}

}  // namespace maskwatch
