// Text from outside (camera URLs, MQTT payloads, FFmpeg and peer error messages) on its way
// into log lines, stored history and API answers: credentials in URLs hidden, control
// characters escaped so that no payload can forge or split a log line.
#pragma once
#include <string>
#include <string_view>

namespace maskwatch {

// The password of every URL in `text` replaced: "rtsp://user:secret@host/x" ->
// "rtsp://user:***@host/x"; a user-only part (often a token) goes whole: "https://***@host".
std::string redact_url(std::string_view text);

// Control characters as C escapes (\n, \r, \t, \x1b ...); everything else as it is.
std::string escape_control(std::string_view text);

// spdlog's default logger prints every message through redact_url and escape_control.
void install_log_format();

}  // namespace maskwatch
