#include "util/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>

namespace maskwatch {

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  if (s < 60) return fmt::format("{:.1f}s", s);
  const long t = std::lround(s);
  if (t < 3600) return fmt::format("{}m{:02d}s", t / 60, static_cast<int>(t % 60));
  return fmt::format("{}h{:02d}m", t / 3600, static_cast<int>((t % 3600) / 60));
}

bool ProgressBar::enabled() { return std::getenv("MASKWATCH_NO_PROGRESS") == nullptr; }

ProgressBar::ProgressBar(std::string label, size_t total, std::string unit)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      tty_(isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

ProgressBar::~ProgressBar() {
  if (!finished_ && done_ > 0) finish(status_);
}

double ProgressBar::elapsed_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

double ProgressBar::rate() const {
  const double e = elapsed_s();
  return e > 0 ? static_cast<double>(done_) / e : 0.0;
}

void ProgressBar::advance(size_t n, const std::string& status) {
  done_ += n;
  if (!status.empty()) status_ = status;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_draw_).count();
  if ((tty_ && since > 0.1) || (!tty_ && since > 10.0)) {
    last_draw_ = now;
    draw(false);
  }
}

void ProgressBar::finish(const std::string& status) {
  if (finished_) return;
  if (!status.empty()) status_ = status;
  finished_ = true;
  draw(true);
}

void ProgressBar::draw(bool final) {
  if (!enabled()) return;
  const double frac = total_ ? std::min(1.0, static_cast<double>(done_) / total_) : 1.0;
  const double r = rate();
  const double eta = (r > 0 && done_ < total_) ? (total_ - done_) / r : 0.0;
  std::string line = fmt::format("{} {:3.0f}% {}/{} {:.1f} {}/s", label_, frac * 100, done_, total_, r, unit_);
  if (tty_) {
    const int width = 24;
    const int filled = static_cast<int>(std::lround(frac * width));
    line = fmt::format("{} [{}{}] {:3.0f}% {}/{} {:.1f} {}/s", label_, std::string(filled, '#'),
                       std::string(width - filled, '.'), frac * 100, done_, total_, r, unit_);
  }
  line += final ? fmt::format(" in {}", format_duration(elapsed_s())) : fmt::format(" ETA {}", format_duration(eta));
  if (!status_.empty()) line += " | " + status_;
  if (tty_)
    std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final ? "\n" : "");
  else
    std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

}  // namespace maskwatch
