// Text from outside (camera URLs, MQTT payloads, FFmpeg and peer error messages) on its way
// into log lines, stored history and API answers: credentials in URLs hidden, control
// characters escaped so that no payload can forge or split a log line.
#pragma once
#include <spdlog/common.h>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace maskwatch {

// The password of every URL in `text` replaced: "rtsp://user:secret@host/x" ->
// "rtsp://user:***@host/x"; a user-only part (often a token) goes whole: "https://***@host".
// Also hides every secret passed to remember_secret (a camera URL's password read from the
// config), wherever it appears: a password with a space in it is not found by the pattern.
std::string redact_url(std::string_view text);

// The password of `url` (after "user:" and up to the last '@' before the host, as FFmpeg reads
// it) is hidden by redact_url from now on. No-op for a URL without one.
void remember_url_secret(const std::string& url);

// A URL whose path is the secret (a webhook: Discord's /api/webhooks/ID/TOKEN, Telegram's
// /botTOKEN/..., Slack's /services/...): "https://discord.com/***", credentials redacted too.
std::string hide_url_path(std::string_view url);

// Control characters as C escapes (\n, \r, \t, \x1b ...); everything else as it is.
std::string escape_control(std::string_view text);

// A line that can repeat without end (a state that flips back and forth with the load, a
// refusal under a flood): the first one is logged at its level, then at most one per
// `interval`, saying how many came in between; those go to debug level.
class LogThrottle {
 public:
  using Clock = std::chrono::steady_clock;
  explicit LogThrottle(Clock::duration interval) : interval_(interval) {}
  // `line` at `level` if admitted, with " (N more <held_what> since the last such line)"
  // when some were held back; at debug level if not. Safe from any thread.
  void log(spdlog::level::level_enum level, std::string_view line, std::string_view held_what,
           Clock::time_point now = Clock::now());
  // Log this one at its level: how many were held back since the last one that was.
  // nullopt: debug level only. Safe from any thread.
  std::optional<int64_t> admit(Clock::time_point now = Clock::now());

 private:
  Clock::duration interval_;
  std::optional<Clock::time_point> last_;
  int64_t held_ = 0;
  std::mutex mutex_;
};

// spdlog's default logger prints every message through redact_url and escape_control.
void install_log_format();

}  // namespace maskwatch
