// The plain keys of a serve config, each declared once in a table (see Field). The tables
// are read by parse_serve_config, shown by ServeConfig::to_json and listed by config_keys.
#pragma once
#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "serve/config.h"
#include "serve/config_reader.h"
#include "vision/face_stage_settings.h"

namespace maskwatch {

// Every plain key is declared once, in a table: its member, range and help drive reading
// (typed, range-checked, file:line errors), the effective config (`config check`,
// /api/config, secrets shown as ***) and the key reference (`config keys`). Keys that need
// more (paths, names, lists, cross-checks) are read by hand around their table.
template <class S>
struct Field {
  const char* key;
  std::variant<bool S::*, int S::*, float S::*, double S::*, std::string S::*> member;
  double lo = 0, hi = 0;  // numbers: the allowed range
  const char* help = "";
  bool secret = false;  // text: may come from <key>_env instead; shown as ***
};

template <class S>
void read_fields(MapReader& r, S& s, const std::vector<Field<S>>& fields) {
  for (const auto& f : fields)
    std::visit(
        [&](auto m) {
          using T = std::remove_reference_t<decltype(s.*m)>;
          if constexpr (std::is_same_v<T, bool>)
            r.get(f.key, s.*m);
          else if constexpr (std::is_same_v<T, std::string>)
            f.secret ? read_secret(r, f.key, s.*m) : r.get(f.key, s.*m);
          else
            r.get_range(f.key, s.*m, static_cast<T>(f.lo), static_cast<T>(f.hi));
        },
        f.member);
}

template <class S>
nlohmann::json fields_json(const S& s, const std::vector<Field<S>>& fields, bool redact) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& f : fields)
    std::visit(
        [&](auto m) {
          using T = std::remove_cv_t<std::remove_reference_t<decltype(s.*m)>>;
          if constexpr (std::is_same_v<T, std::string>)
            j[f.key] = f.secret && redact && !(s.*m).empty() ? std::string("***") : s.*m;
          else if constexpr (std::is_same_v<T, float>)
            j[f.key] = std::stod(fmt::format("{}", s.*m));  // 0.6, not the double 0.6000000238418579
          else
            j[f.key] = s.*m;
        },
        f.member);
  return j;
}

template <class S>
void document(std::vector<ConfigKey>& out, const std::string& prefix, const std::vector<Field<S>>& fields) {
  static const S defaults{};
  for (const auto& f : fields) {
    ConfigKey k;
    k.key = prefix + f.key;
    k.help = f.help;
    k.secret = f.secret;
    std::visit(
        [&](auto m) {
          using T = std::remove_cv_t<std::remove_reference_t<decltype(defaults.*m)>>;
          const T& v = defaults.*m;
          if constexpr (std::is_same_v<T, bool>) {
            k.type = "true/false";
            k.default_value = v ? "true" : "false";
          } else if constexpr (std::is_same_v<T, std::string>) {
            k.type = "text";
            k.default_value = "\"" + v + "\"";
          } else {
            k.type = fmt::format("{} .. {}", static_cast<T>(f.lo), static_cast<T>(f.hi));
            k.default_value = fmt::format("{}", v);
          }
        },
        f.member);
    out.push_back(std::move(k));
  }
}

// A key `run` and `detect` also take as a flag: its name, range and help from the one spec.
template <class S, class M>
Field<S> shared_field(const SettingSpec& spec, M S::*member) {
  return {spec.key, member, spec.lo, spec.hi, spec.help};
}

const std::vector<Field<TrackerOptions>>& tracker_fields();
const std::vector<Field<MotionOptions>>& motion_fields();
const std::vector<Field<DetectorSettings>>& detector_fields();
const std::vector<Field<CameraConfig>>& camera_fields();
const std::vector<Field<HttpConfig>>& http_fields();
const std::vector<Field<HttpAuth>>& auth_fields();
const std::vector<Field<StorageConfig>>& storage_fields();
const std::vector<Field<ClipConfig>>& clip_fields();
const std::vector<Field<MqttConfig>>& mqtt_fields();
const std::vector<Field<AlertRule>>& alert_fields();

}  // namespace maskwatch
