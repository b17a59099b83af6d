// Where frames come from. `open_source` understands:
//   "0", "1"...        webcam index (V4L2), --width x --height (640x480 by default)
//   /dev/videoN        webcam device
//   rtsp://, http://.. network stream (FFmpeg)
//   a FIFO (named pipe) a live stream written by another program (e.g. ffmpeg ... -f mpegts)
//   a folder           its images, sorted by name (unreadable ones skipped with a warning)
//   anything else      a video file
// Files are read frame by frame and timed by their frame rate, so results do not depend on
// processing speed. Live sources (cameras, streams, FIFOs) are read by a capture thread
// (vision/capture.h) that keeps only the newest frame, so processing never falls behind the
// camera; a stream that drops or stalls is reopened with backoff. Opens and reads of streams
// time out (FFmpeg's interrupt callback), so a dead server never blocks a thread for long, and
// read() returns at once when the `cancel` flag is set (Ctrl-C while a stream is down).
#pragma once
#include <atomic>
#include <chrono>
#include <memory>
#include <opencv2/core.hpp>
#include <string>

namespace maskwatch {

// True when `path` is a FIFO (named pipe). Opening one blocks until a writer opens it, and a
// writer that stays silent blocks every read: such a source is opened and read by the capture
// thread, which is left behind (not joined) if it is still stuck when the source closes.
bool is_fifo_path(const std::string& path);

struct SourceOptions {
  int width = 640, height = 480;              // requested camera resolution
  double folder_fps = 1.0;                    // time step between images of a folder
  double reconnect_for_s = 0;                 // live: give up this long after the last frame (0 = never)
  int open_timeout_ms = 5000;                 // streams: FFmpeg open time-out
  int read_timeout_ms = 3000;                 // streams: a read that waits longer is a stall (reopen)
  const std::atomic<bool>* cancel = nullptr;  // live: read() returns false soon after it is set
  int decoder_threads = 0;                    // FFmpeg decoding threads per source (0 = one per core)
};

struct SourceFrame {
  cv::Mat image;
  int64_t index = 0;  // 0-based frame number (frames dropped by live sources are skipped)
  double time_s = 0;  // media time (files) or seconds since the capture started (live)
  std::chrono::steady_clock::time_point captured{};  // when it arrived (set by a capture thread)
};

class FrameSource {
 public:
  virtual ~FrameSource() = default;
  // Next frame; false at the end (file, folder) or when a live source is gone for good.
  virtual bool read(SourceFrame& out) = 0;
  virtual bool live() const = 0;
  virtual double fps() const = 0;  // nominal; 0 if unknown
  virtual std::string description() const = 0;
  virtual int64_t dropped() const { return 0; }
  // Why the source ended, when it was lost rather than finished ("" for a file's end).
  virtual std::string failure() const { return {}; }
  // A live source (URL) that turned out to be a recording and reached its end (an http:// or
  // file:// video): not reconnected, or it would replay for ever.
  virtual bool finished() const { return false; }
};

// Throws Error with a clear reason when the source cannot be opened.
std::unique_ptr<FrameSource> open_source(const std::string& spec, const SourceOptions& options = {});

// True for cameras, streams and FIFOs (what open_source reads through a capture thread).
bool is_live_spec(const std::string& spec);
// A webcam index ("0", "12": up to three digits; "1234" is a file of that name).
bool is_webcam_index(const std::string& spec);
// A URL ("rtsp://...", "file://...").
bool is_url_spec(const std::string& spec);

// The source itself, without a capture thread: a live source's read() blocks until its next
// frame and returns false when it stalls past read_timeout_ms or ends (failure() says why); a
// FIFO's open blocks until a writer comes. For vision/capture. Throws Error like open_source.
std::unique_ptr<FrameSource> open_reader(const std::string& spec, const SourceOptions& options = {});

}  // namespace maskwatch
