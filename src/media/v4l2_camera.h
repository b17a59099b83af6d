// A V4L2 webcam read directly (YUYV or MJPEG, mmap'ed buffers), converted to BGR exactly as
// OpenCV's V4L2 backend converts them (cvtColor for YUYV, libjpeg for MJPEG). FFmpeg's V4L2
// input would do too, but it sits in libavdevice, whose dependencies (SDL, X11, PulseAudio,
// OpenAL...) add 17 MiB resident to a camera run, which then misses the 100 MiB target.
// Cameras that offer neither format are refused here and opened by FFmpeg instead
// (vision/source.cpp).
#pragma once
#include <cstdint>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

namespace maskwatch {

// V4L2 pixel formats this reader converts.
constexpr uint32_t kFourccYuyv = 0x56595559;   // 'YUYV'
constexpr uint32_t kFourccMjpeg = 0x47504A4D;  // 'MJPG'

// One captured buffer -> BGR; empty with *why for a damaged frame.
cv::Mat v4l2_frame_to_bgr(uint32_t fourcc, const uint8_t* data, size_t bytes, int width, int height,
                          size_t bytes_per_line, std::string* why = nullptr);

class V4l2Camera {
 public:
  V4l2Camera() = default;
  ~V4l2Camera();
  V4l2Camera(const V4l2Camera&) = delete;
  V4l2Camera& operator=(const V4l2Camera&) = delete;

  // Opens the device, picks YUYV (else MJPEG) at the size nearest width x height the driver
  // offers, and starts streaming. False with error() on any failure.
  bool open(const std::string& device, int width, int height);
  // Next frame; false when none came within timeout_ms or the device failed (error() says).
  bool read(cv::Mat& bgr, int timeout_ms = 3000);
  void close();
  bool is_open() const { return fd_ >= 0; }

  int width() const { return width_; }
  int height() const { return height_; }
  double fps() const { return fps_; }
  uint32_t fourcc() const { return fourcc_; }
  // Whether open() failed at the device itself (missing, busy, no permission, not a camera)
  // rather than at a format this reader lacks.
  bool device_failed() const { return device_failed_; }
  const std::string& error() const { return error_; }

 private:
  bool fail(std::string why, bool device = false);

  struct Buffer {
    void* start = nullptr;
    size_t length = 0;
  };
  int fd_ = -1;
  std::vector<Buffer> buffers_;
  bool streaming_ = false;
  int width_ = 0, height_ = 0;
  size_t bytes_per_line_ = 0;
  double fps_ = 0;
  uint32_t fourcc_ = 0;
  bool device_failed_ = false;
  std::string error_;
};

}  // namespace maskwatch
