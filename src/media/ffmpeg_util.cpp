#include "media/ffmpeg_util.h"

extern "C" {
#include <libavformat/avformat.h>
#include <libavutil/error.h>
#include <libavutil/log.h>
}
#include <spdlog/spdlog.h>

#include <cstdarg>
#include <mutex>

namespace maskwatch {

void init_ffmpeg() {
  static std::once_flag once;
  std::call_once(once, [] {
    av_log_set_callback([](void* avcl, int level, const char* format, va_list args) {
      if (level > AV_LOG_WARNING || !spdlog::should_log(spdlog::level::debug)) return;
      char line[1024];
      int print_prefix = 1;
      av_log_format_line2(avcl, level, format, args, line, sizeof line, &print_prefix);
      std::string text(line);
      while (!text.empty() && text.back() == '\n') text.pop_back();
      spdlog::debug("FFmpeg: {}", text);
    });
    avformat_network_init();
  });
}

std::string av_error_text(int code) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(code, buf, sizeof buf);
  return buf;
}

}  // namespace maskwatch
