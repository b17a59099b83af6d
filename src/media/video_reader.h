// Video decoding with FFmpeg (libavformat + libavcodec + libswscale) directly, instead of
// OpenCV's videoio: videoio needs libopencv_imgcodecs, and the two pull in GDAL, GStreamer,
// poppler, HDF5... (44 MiB of resident libraries measured at start-up), which kept the
// runtime over its 100 MiB target. Frames come out as OpenCV's FFmpeg backend gives them
// (BGR24 through swscale with SWS_BICUBIC; a test compares every frame of the clip).
//
// Files, network streams (rtsp:// over TCP, http://...) and, for cameras V4l2Camera cannot
// read, FFmpeg's V4L2 input (libavdevice, 17 MiB of further libraries, loaded only then).
// Opening and each read can time out (FFmpeg's interrupt callback), so a dead server never
// blocks a thread for long.
#pragma once
#include <cstdint>
#include <memory>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

namespace maskwatch {

struct VideoReaderOptions {
  int open_timeout_ms = 0;    // 0 = no limit
  int read_timeout_ms = 0;    // per read; 0 = no limit
  bool camera = false;        // a V4L2 device such as /dev/video0
  int width = 0, height = 0;  // cameras: requested size (the driver may pick the nearest)
  int decoder_threads = 0;    // 0 = FFmpeg's choice (one per core)
};

class VideoReader {
 public:
  VideoReader();
  ~VideoReader();
  VideoReader(const VideoReader&) = delete;
  VideoReader& operator=(const VideoReader&) = delete;

  // Opens a file path or URL. False (and error() says why) when it cannot be opened or has
  // no video stream FFmpeg can decode.
  bool open(const std::string& url, const VideoReaderOptions& options = {});
  // Opens encoded bytes held in memory (an image file's contents: BMP, WebP, TIFF, ...).
  bool open_memory(std::vector<uint8_t> bytes);
  // Next frame as 8-bit BGR; false at the end, on a decode error or a read time-out.
  bool read(cv::Mat& bgr);
  bool is_open() const;
  void close();

  double fps() const;  // nominal frame rate; 0 if the container does not say
  // As shown: a stream with a display matrix (phone videos) comes out turned as players turn it.
  int width() const;
  int height() const;
  // The last frame's presentation time in seconds from the stream's start (variable frame rate
  // videos: frame index / fps is wrong); NaN when the stream has no timestamps.
  double frame_time_s() const;
  // The container gives a duration: a recording (served over http:// or file://), not a live feed.
  bool is_recording() const;
  // The last read() ended at the clean end of such a recording.
  bool ended_recording() const;
  // Frames the container lists for the video stream (0: it does not say), and packets of it
  // the decoder refused so far (skipped: a corrupt or cut file).
  int64_t listed_frames() const;
  int64_t damaged_packets() const;
  const std::string& error() const;

 private:
  bool quarter_turned() const;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace maskwatch
