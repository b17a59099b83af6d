// Writes annotated frames to a video file. The file is written under a temporary name and
// renamed into place when recording stops (or the recorder is destroyed), so an aborted run
// leaves either a playable video or none, never a half-written file under the real name.
#pragma once
#include <filesystem>
#include <opencv2/core.hpp>

#include "media/video_writer.h"

namespace maskwatch {

class VideoRecorder {
 public:
  // .mp4/.m4v/.mov (MPEG-4 Part 2) or .avi (MJPEG); throws Error for other extensions.
  VideoRecorder(std::filesystem::path path, double fps);
  ~VideoRecorder();
  VideoRecorder(const VideoRecorder&) = delete;
  VideoRecorder& operator=(const VideoRecorder&) = delete;

  // Records into a hidden part beside `path` (moved into place by close); a part left by a run
  // that was killed is kept as NAME.interrupted.EXT; one another run is writing is refused.
  void write(const cv::Mat& frame);  // opens on the first frame (its size fixes the video's)
  void close();                      // finalise and move into place
  int frames() const { return frames_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  void keep_interrupted_part();

  std::filesystem::path path_, tmp_;
  int lock_fd_ = -1;  // an flock on the part while it is written
  double fps_;
  VideoWriter writer_;
  cv::Size size_;
  int frames_ = 0;
  bool warned_size_ = false;  // a frame of another size than the first was fitted in
};

}  // namespace maskwatch
