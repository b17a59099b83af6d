#include "util/log_text.h"

#include <fmt/format.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <regex>

namespace maskwatch {

std::string redact_url(std::string_view text) {
  std::string out(text);
  if (out.find("://") == std::string::npos) return out;  // the common case: no regex at all
  static const std::regex with_password(R"(([A-Za-z][A-Za-z0-9+.-]*://)([^/@\s:]*):[^/@\s]*@)");
  static const std::regex user_only(R"(([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s:]+@)");
  out = std::regex_replace(out, with_password, "$1$2:***@");
  return std::regex_replace(out, user_only, "$1***@");
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
  if (last_ && now - *last_ < interval_) {
    ++held_;
    return std::nullopt;
  }
  last_ = now;
  const int64_t held = held_;
  held_ = 0;
  return held;
}

}  // namespace maskwatch
