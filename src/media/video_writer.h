// Video encoding with FFmpeg directly (see video_reader.h for why not OpenCV's videoio):
// .mp4/.m4v/.mov get MPEG-4 Part 2 (what OpenCV's 'mp4v' writer produced; fast to encode),
// or H.264 with `for_browsers` (libx264: what browsers play in a <video> element, which
// MPEG-4 Part 2 is not; the index at the front so playback starts before the whole file is
// loaded); .avi gets MJPEG. Frames are BGR; every frame must have the size given to open().
#pragma once
#include <filesystem>
#include <memory>
#include <opencv2/core.hpp>
#include <string>

namespace maskwatch {

struct VideoWriterOptions {
  bool for_browsers = false;  // .mp4/.m4v/.mov: H.264, fast start
  // .mp4/.m4v/.mov: a fragment per keyframe (every 12 frames, or 2 s for browsers) instead of
  // one index at the end, each handed to the kernel when it closes, so a file cut off (a kill,
  // the OOM killer, a full disk) plays up to its last fragment; without it such a file does not
  // play at all. (Not synced: a power cut may lose what the kernel had not written.) The header
  // then holds no duration nor frame count (players read them from the fragments and the index
  // at the end). Not with for_browsers.
  bool fragmented = false;
  int threads = 0;  // encoder threads (0: FFmpeg chooses)
};

class VideoWriter {
 public:
  VideoWriter();
  ~VideoWriter();  // closes (writes the trailer) if still open
  VideoWriter(const VideoWriter&) = delete;
  VideoWriter& operator=(const VideoWriter&) = delete;

  // Whether the extension names a container this writer knows (.mp4 .m4v .mov .avi).
  static bool supports(const std::filesystem::path& path);
  // False (error() says why) for an unknown extension, a size FFmpeg refuses, an unwritable path.
  bool open(const std::filesystem::path& path, double fps, cv::Size size, const VideoWriterOptions& options = {});
  bool write(const cv::Mat& bgr);  // false on an encoder or disk error (error() says which)
  bool close();                    // flushes the encoder and writes the trailer
  bool is_open() const;
  const std::string& error() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace maskwatch
