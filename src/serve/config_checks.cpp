// The checks of a serve config beyond its syntax: warnings `serve` and `config check` print,
// and the files a restart would need.
#include <arpa/inet.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <filesystem>
#include <regex>

#include "serve/config.h"
#include "util/error.h"
#include "vision/face_detector.h"
#include "vision/source.h"

namespace maskwatch {

std::string data_dir_override_warning(const StorageConfig& from_file, const std::filesystem::path& data_dir) {
  if (!from_file.dir_in_file || data_dir.empty()) return {};
  const auto normal = [](const std::filesystem::path& p) { return std::filesystem::absolute(p).lexically_normal(); };
  if (normal(from_file.dir) == normal(data_dir)) return {};
  return fmt::format("storage: --data {} is used; the config's storage.dir ({}) is not", data_dir.string(),
                     from_file.dir);
}

bool is_address_or_host_name(const std::string& text) {
  in_addr v4{};
  in6_addr v6{};
  // An IPv6 address may carry its interface (fe80::1%eth0).
  const std::string address = text.substr(0, text.find('%'));
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1 || inet_pton(AF_INET6, address.c_str(), &v6) == 1) return true;
  // Host name labels (underscores too: container service names have them), one trailing dot
  // allowed; all digits and dots is a malformed IPv4 address, not a name.
  std::string host = text;
  if (!host.empty() && host.back() == '.') host.pop_back();
  static const std::regex name(
      R"([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*)");
  return host.size() <= 253 && std::regex_match(host, name) &&
         host.find_first_not_of("0123456789.") != std::string::npos;
}

std::vector<std::string> missing_source_warnings(const ServeConfig& cfg) {
  std::vector<std::string> out;
  for (const auto& c : cfg.cameras) {
    const auto& src = c.source;
    const bool local_path = !src.empty() && !is_url_spec(src) && !is_webcam_index(src) && src.rfind("/dev/", 0) != 0;
    std::error_code ec;
    if (local_path && !std::filesystem::exists(src, ec))
      out.push_back(fmt::format("cameras.{}.source: {} does not exist (serve starts the camera offline and retries it)",
                                c.name, src));
  }
  return out;
}

std::string open_without_login_warning(const HttpConfig& http) {
  const bool loopback = http.listen == "localhost" || http.listen == "::1" || http.listen.rfind("127.", 0) == 0;
  if (loopback || http.auth.enabled()) return {};
  return fmt::format(
      "http.listen {} without http.auth: anyone who can reach port {} can watch the cameras and change the config "
      "(set http.auth, or listen on 127.0.0.1)",
      http.listen, http.port);
}

std::vector<std::string> pictureless_camera_warnings(const ServeConfig& cfg) {
  std::vector<std::string> out;
  for (const auto& c : cfg.cameras) {
    if (c.privacy != FacePrivacy::None) continue;
    std::vector<std::string> rules;
    for (const auto& r : cfg.alerts)
      if (alert_has_picture(r) && (r.cameras.empty() || std::find(r.cameras.begin(), r.cameras.end(), c.name) !=
                                                             r.cameras.end()))
        rules.push_back(r.name);
    if (!rules.empty())
      out.push_back(fmt::format(
          "cameras.{}: privacy.faces is none, so alert{} {} keep{} no snapshot{} of this camera (no picture of a face "
          "is kept under none; blurred keeps them with the faces blurred)",
          c.name, rules.size() > 1 ? "s" : "", fmt::join(rules, ", "), rules.size() > 1 ? "" : "s",
          cfg.clips.enabled ? " or clip" : ""));
  }
  return out;
}

std::vector<std::string> config_warnings(const ServeConfig& cfg) {
  std::vector<std::string> out;
  if (auto open = open_without_login_warning(cfg.http); !open.empty()) out.push_back(std::move(open));
  for (auto& w : missing_source_warnings(cfg)) out.push_back(std::move(w));
  for (auto& w : pictureless_camera_warnings(cfg)) out.push_back(std::move(w));
  return out;
}

void check_config_files(const ServeConfig& cfg) {
  std::error_code ec;
  if (!cfg.model.empty() && !std::filesystem::is_regular_file(cfg.model, ec))
    throw Error(fmt::format("{}:{}: model {} not found", cfg.file.string(), cfg.model_line, cfg.model));
  const auto check_face = [&](const DetectorSettings& d, const std::string& where) {
    if (d.face_model.empty()) return;  // the default: YuNet, else the Haar fallback with a warning
    const auto path = resolve_face_model(d.face_model);
    if (!std::filesystem::is_regular_file(path, ec))
      throw Error(
          fmt::format("{}: {}face_model {} not found ({})", cfg.file.string(), where, d.face_model, path.string()));
  };
  check_face(cfg.detector, "detector.");
  for (const auto& c : cfg.cameras) check_face(c.detector, "cameras." + c.name + ".detector.");
}

}  // namespace maskwatch
