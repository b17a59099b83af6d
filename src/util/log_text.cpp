#include "util/log_text.h"

#include <fmt/format.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <regex>
#include <vector>

namespace maskwatch {

namespace {
std::mutex g_secrets_mutex;
std::vector<std::string> g_secrets;  // few (one per camera URL with a password), never removed

void hide_remembered(std::string& out) {
  std::lock_guard<std::mutex> lock(g_secrets_mutex);
  for (const auto& secret : g_secrets)
    for (size_t at = out.find(secret); at != std::string::npos; at = out.find(secret, at + 3))
      out.replace(at, secret.size(), "***");
}
}  // namespace

void remember_url_secret(const std::string& url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos) return;
  const size_t user = scheme + 3, at = url.rfind('@');
  if (at == std::string::npos || at < user) return;
  const size_t colon = url.find(':', user);
  if (colon == std::string::npos || colon > at) return;
  const std::string secret = url.substr(colon + 1, at - colon - 1);
  if (secret.size() < 3) return;  // "***" itself, or too short to hide without hiding words
  std::lock_guard<std::mutex> lock(g_secrets_mutex);
  if (std::find(g_secrets.begin(), g_secrets.end(), secret) == g_secrets.end()) g_secrets.push_back(secret);
}

std::string redact_url(std::string_view text) {
  std::string out(text);
  hide_remembered(out);
  if (out.find("://") == std::string::npos) return out;  // the common case: no regex at all
  // The password runs to the last '@' before a space or the next URL (FFmpeg splits at the last
  // '@', and a password may hold '/' or '@'): hiding a little too much beats showing a part.
  static const std::regex with_password(R"(([A-Za-z][A-Za-z0-9+.-]*://)([^/@\s:]*):(?:(?!://)\S)*@)");
  static const std::regex user_only(R"(([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s:]+@)");
  // Secrets in the query string: ?password=..., &token=...
  // Any parameter one of whose name parts (split at _ . -) is one of these: api_key, apikey,
  // client_secret, X-Amz-Signature, access_token... (not keyframe, author or design).
  static const std::regex in_query(
      R"(([?&](?:[A-Za-z0-9]*[_.-])*(?:password|passwd|pass|pwd|pw|psw|passphrase|token|key|apikey|secret|auth)"
      R"(|sig|signature|credentials?)(?:[_.-][A-Za-z0-9]*)*=)[^&\s]*)",
      std::regex::icase);
  out = std::regex_replace(out, with_password, "$1$2:***@");
  out = std::regex_replace(out, user_only, "$1***@");
  return std::regex_replace(out, in_query, "$1***");
}

std::string hide_url_path(std::string_view url) {
  const std::string shown = redact_url(url);
  const size_t scheme = shown.find("://");
  if (scheme == std::string::npos) return shown;
  const size_t path = shown.find_first_of("/?#", scheme + 3);
  if (path == std::string::npos || shown.find_first_not_of('/', path) == std::string::npos) return shown;
  return shown.substr(0, path) + "/***";
}

std::string escape_control(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u != 0x7f) {
      out += c;
      continue;
    }
    switch (c) {
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default: out += fmt::format("\\x{:02x}", u);
    }
  }
  return out;
}

namespace {

// %* in the pattern: the message, redacted and escaped. One place for every log line, so a
// caller cannot forget it.
class SafeMessage : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    const std::string text = escape_control(redact_url(std::string_view(msg.payload.data(), msg.payload.size())));
    dest.append(text.data(), text.data() + text.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<SafeMessage>(); }
};

}  // namespace

void install_log_format() {
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<SafeMessage>('*').set_pattern("[%H:%M:%S] %^%l%$: %*");
  spdlog::set_formatter(std::move(formatter));
}

std::optional<int64_t> LogThrottle::admit(Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (last_ && now - *last_ < interval_) {
    ++held_;
    return std::nullopt;
  }
  last_ = now;
  const int64_t held = held_;
  held_ = 0;
  return held;
}

void LogThrottle::log(spdlog::level::level_enum level, std::string_view line, std::string_view held_what,
                      Clock::time_point now) {
  const std::optional<int64_t> held = admit(now);
  if (!held)
    spdlog::debug("{}", line);
  else if (*held)
    spdlog::log(level, "{} ({} more {} since the last such line)", line, *held, held_what);
  else
    spdlog::log(level, "{}", line);
}

}  // namespace maskwatch
