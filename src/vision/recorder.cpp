#include "vision/recorder.h"

#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <opencv2/imgproc.hpp>

#include "util/error.h"
#include "util/files.h"

namespace maskwatch {
namespace {
// The encoders take even sizes only: an odd frame size is scaled to the even one below it.
cv::Size even_size(const cv::Mat& frame) { return {std::max(2, frame.cols & ~1), std::max(2, frame.rows & ~1)}; }
}  // namespace

VideoRecorder::VideoRecorder(std::filesystem::path path, double fps)
    : path_(std::move(path)), fps_(fps > 0 ? fps : 15) {
  if (!VideoWriter::supports(path_))
    throw Error("recording needs a .mp4, .m4v, .mov or .avi file name, not " + path_.string());
  tmp_ = sibling_name(path_, ".", ".part");
  if (path_.has_parent_path()) std::filesystem::create_directories(path_.parent_path());
  keep_interrupted_part();
}

// A part left by a recording that was killed (a fragmented .mp4 plays up to its last fragment,
// an .avi up to where it stopped) is kept beside the recording under a name of its own instead
// of being overwritten by this one. A part another run holds locked is that run's recording.
void VideoRecorder::keep_interrupted_part() {
  const int fd = ::open(tmp_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;  // none
  const bool busy = ::flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);
  if (busy) throw Error("cannot record to " + path_.string() + ": another run is recording to it");
  for (int n = 1; n <= 1000; ++n) {
    const std::filesystem::path kept =
        sibling_name(path_, "", ".interrupted" + (n > 1 ? "-" + std::to_string(n) : std::string()));
    if (::link(tmp_.c_str(), kept.c_str()) == 0) {  // never over a file that is there (rename would be)
      ::unlink(tmp_.c_str());
      spdlog::warn("recording {}: an earlier recording to it was interrupted; what it had is kept as {}",
                   path_.string(), kept.string());
      return;
    }
    if (errno != EEXIST) {
      spdlog::warn("recording {}: an interrupted earlier recording {} could not be kept as {}: {}", path_.string(),
                   tmp_.string(), kept.string(), std::strerror(errno));
      return;
    }
  }
}

VideoRecorder::~VideoRecorder() {
  try {
    close();
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
  }
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

void VideoRecorder::write(const cv::Mat& frame) {
  if (!writer_.is_open()) {
    if (frames_ > 0) return;  // closed already
    size_ = even_size(frame);
    VideoWriterOptions options;
    options.fragmented = true;  // a run killed while it records keeps what it recorded
    if (!writer_.open(tmp_, fps_, size_, options)) throw Error("cannot write video " + path_.string() + ": " + writer_.error());
    // Held while it records: another run's recorder to this name sees the part is not left over.
    lock_fd_ = ::open(tmp_.c_str(), O_RDONLY | O_CLOEXEC);
    if (lock_fd_ >= 0) ::flock(lock_fd_, LOCK_EX | LOCK_NB);
  }
  bool ok;
  if (frame.size() != size_) {
    // A frame of another size (an image folder of mixed sizes): scaled to fit, its aspect
    // kept, on black, rather than stretched; said once.
    if (even_size(frame) != size_ && !warned_size_) {
      spdlog::warn("recording {}: frames of another size than the first ({}x{}) are fitted into it on black",
                   path_.string(), size_.width, size_.height);
      warned_size_ = true;
    }
    const double scale = std::min(static_cast<double>(size_.width) / frame.cols,
                                  static_cast<double>(size_.height) / frame.rows);
    const cv::Size fitted(std::clamp(static_cast<int>(std::lround(frame.cols * scale)), 1, size_.width),
                          std::clamp(static_cast<int>(std::lround(frame.rows * scale)), 1, size_.height));
    cv::Mat canvas(size_, frame.type(), cv::Scalar::all(0)), resized;
    cv::resize(frame, resized, fitted, 0, 0, cv::INTER_AREA);
    resized.copyTo(canvas(cv::Rect((size_.width - fitted.width) / 2, (size_.height - fitted.height) / 2,
                                   fitted.width, fitted.height)));
    ok = writer_.write(canvas);
  } else {
    ok = writer_.write(frame);
  }
  if (!ok) throw Error("cannot write video " + path_.string() + ": " + writer_.error());
  ++frames_;
}

void VideoRecorder::close() {
  if (!writer_.is_open()) return;
  const bool closed = writer_.close();
  if (lock_fd_ >= 0) ::close(lock_fd_);  // (a part that failed to close is left over, so unlocked)
  lock_fd_ = -1;
  if (!closed) throw Error("cannot finish video " + path_.string() + ": " + writer_.error());
  std::error_code ec;
  std::filesystem::rename(tmp_, path_, ec);
  if (ec) throw Error("cannot move recording into place at " + path_.string() + ": " + ec.message());
}

}  // namespace maskwatch
