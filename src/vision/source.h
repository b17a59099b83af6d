// Where frames come from. `open_source` understands:
//   "0", "1"...        webcam index (V4L2), --width x --height (640x480 by default)
//   /dev/videoN        webcam device
//   rtsp://, http://.. network stream (OpenCV's FFmpeg backend)
//   a folder           its images, sorted by name (unreadable ones skipped with a warning)
//   anything else      a video file
// Files are read frame by frame and timed by their frame rate, so results do not depend on
// processing speed. Live sources (cameras, streams) are read by a capture thread that keeps
// only the newest frame, so processing never falls behind the camera; a stream that drops
// is reopened with backoff.
#pragma once
#include <memory>
#include <opencv2/core.hpp>
#include <string>

namespace maskwatch {

struct SourceOptions {
  int width = 640, height = 480;  // requested camera resolution
  double folder_fps = 1.0;        // time step between images of a folder
  int reconnect_attempts = 8;     // streams: give up after this many failed reopen attempts in a row
};

struct SourceFrame {
  cv::Mat image;
  int64_t index = 0;  // 0-based frame number (frames dropped by live sources are skipped)
  double time_s = 0;  // media time (files) or seconds since the source opened (live)
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
};

// Throws Error with a clear reason when the source cannot be opened.
std::unique_ptr<FrameSource> open_source(const std::string& spec, const SourceOptions& options = {});

}  // namespace maskwatch
