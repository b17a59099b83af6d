// What the FFmpeg-based reader and writer share: one-time set-up and error text.
#pragma once
#include <string>

namespace maskwatch {

// Network support, and FFmpeg's own log lines routed to our debug log (our errors carry
// FFmpeg's reason, and a failed open must stay one line on stderr). Safe to call often.
void init_ffmpeg();

// FFmpeg's text for an AVERROR code.
std::string av_error_text(int code);

}  // namespace maskwatch
