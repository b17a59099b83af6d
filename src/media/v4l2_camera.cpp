#include "media/v4l2_camera.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/videodev2.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <opencv2/imgproc.hpp>

#include "media/image_codec.h"

namespace maskwatch {
namespace {

static_assert(kFourccYuyv == V4L2_PIX_FMT_YUYV && kFourccMjpeg == V4L2_PIX_FMT_MJPEG, "fourcc values");

// ioctl, retried when a signal interrupts it.
int xioctl(int fd, unsigned long request, void* arg) {
  int r;
  do r = ioctl(fd, request, arg);
  while (r == -1 && errno == EINTR);
  return r;
}

std::string errno_text() { return std::strerror(errno); }

}  // namespace

cv::Mat v4l2_frame_to_bgr(uint32_t fourcc, const uint8_t* data, size_t bytes, int width, int height,
                          size_t bytes_per_line, std::string* why) {
  cv::Mat bgr;
  if (fourcc == kFourccYuyv) {
    if (bytes_per_line < static_cast<size_t>(width) * 2 || bytes < bytes_per_line * static_cast<size_t>(height)) {
      if (why) *why = fmt::format("short YUYV frame ({} bytes for {}x{})", bytes, width, height);
      return {};
    }
    const cv::Mat yuyv(height, width, CV_8UC2, const_cast<uint8_t*>(data), bytes_per_line);
    cv::cvtColor(yuyv, bgr, cv::COLOR_YUV2BGR_YUYV);
  } else if (fourcc == kFourccMjpeg) {
    bgr = decode_jpeg(data, bytes, why);  // libjpeg-turbo supplies the Huffman tables MJPEG leaves out
  } else if (why) {
    *why = "unsupported pixel format";
  }
  return bgr;
}

V4l2Camera::~V4l2Camera() { close(); }

bool V4l2Camera::fail(std::string why, bool device) {
  error_ = std::move(why);
  device_failed_ = device;
  close();
  return false;
}

bool V4l2Camera::open(const std::string& device, int width, int height) {
  close();
  error_.clear();
  device_failed_ = false;
  fd_ = ::open(device.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd_ < 0) return fail(device + ": " + errno_text(), true);
  v4l2_capability cap{};
  if (xioctl(fd_, VIDIOC_QUERYCAP, &cap) < 0) return fail(device + " is not a V4L2 device", true);
  const uint32_t caps = (cap.capabilities & V4L2_CAP_DEVICE_CAPS) ? cap.device_caps : cap.capabilities;
  if (!(caps & V4L2_CAP_VIDEO_CAPTURE)) return fail(device + " does not capture video", true);
  if (!(caps & V4L2_CAP_STREAMING)) return fail(device + " cannot stream (no mmap buffers)");

  // YUYV needs no decoding (what OpenCV's backend picks first too); MJPEG otherwise.
  bool has_yuyv = false, has_mjpeg = false;
  v4l2_fmtdesc desc{};
  desc.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
  for (desc.index = 0; xioctl(fd_, VIDIOC_ENUM_FMT, &desc) == 0; ++desc.index) {
    has_yuyv |= desc.pixelformat == V4L2_PIX_FMT_YUYV;
    has_mjpeg |= desc.pixelformat == V4L2_PIX_FMT_MJPEG;
  }
  if (!has_yuyv && !has_mjpeg) return fail(device + " offers neither YUYV nor MJPEG");
  v4l2_format fmt{};
  fmt.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
  fmt.fmt.pix.width = static_cast<uint32_t>(width > 0 ? width : 640);
  fmt.fmt.pix.height = static_cast<uint32_t>(height > 0 ? height : 480);
  fmt.fmt.pix.pixelformat = has_yuyv ? V4L2_PIX_FMT_YUYV : V4L2_PIX_FMT_MJPEG;
  fmt.fmt.pix.field = V4L2_FIELD_ANY;
  if (xioctl(fd_, VIDIOC_S_FMT, &fmt) < 0) return fail(device + ": cannot set the format (" + errno_text() + ")");
  fourcc_ = fmt.fmt.pix.pixelformat;  // the driver may have changed size and format
  width_ = static_cast<int>(fmt.fmt.pix.width);
  height_ = static_cast<int>(fmt.fmt.pix.height);
  bytes_per_line_ = fmt.fmt.pix.bytesperline ? fmt.fmt.pix.bytesperline : static_cast<size_t>(width_) * 2;
  if ((fourcc_ != V4L2_PIX_FMT_YUYV && fourcc_ != V4L2_PIX_FMT_MJPEG) || width_ <= 0 || height_ <= 0)
    return fail(device + ": the driver chose a format this reader does not convert");
  v4l2_streamparm parm{};
  parm.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
  if (xioctl(fd_, VIDIOC_G_PARM, &parm) == 0 && parm.parm.capture.timeperframe.numerator > 0)
    fps_ = static_cast<double>(parm.parm.capture.timeperframe.denominator) / parm.parm.capture.timeperframe.numerator;

  v4l2_requestbuffers req{};
  req.count = 4;
  req.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
  req.memory = V4L2_MEMORY_MMAP;
  if (xioctl(fd_, VIDIOC_REQBUFS, &req) < 0 || req.count < 2)
    return fail(device + ": cannot get capture buffers (" + errno_text() + ")");
  for (uint32_t i = 0; i < req.count; ++i) {
    v4l2_buffer buf{};
    buf.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    buf.memory = V4L2_MEMORY_MMAP;
    buf.index = i;
    if (xioctl(fd_, VIDIOC_QUERYBUF, &buf) < 0) return fail(device + ": cannot query a buffer");
    void* start = mmap(nullptr, buf.length, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, buf.m.offset);
    if (start == MAP_FAILED) return fail(device + ": cannot map a buffer (" + errno_text() + ")");
    buffers_.push_back({start, buf.length});
    if (xioctl(fd_, VIDIOC_QBUF, &buf) < 0) return fail(device + ": cannot queue a buffer");
  }
  v4l2_buf_type type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
  if (xioctl(fd_, VIDIOC_STREAMON, &type) < 0)
    return fail(device + ": cannot start streaming (" + errno_text() + ")", errno == EBUSY);
  streaming_ = true;
  return true;
}

bool V4l2Camera::read(cv::Mat& bgr, int timeout_ms) {
  if (fd_ < 0) return false;
  // A damaged frame (the driver flags it, or it does not decode) is skipped, up to a few.
  for (int damaged = 0; damaged < 8;) {
    pollfd p{fd_, POLLIN, 0};
    const int r = poll(&p, 1, timeout_ms > 0 ? timeout_ms : -1);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) {
      error_ = "no frame within the time-out";
      return false;
    }
    if (r < 0 || (p.revents & (POLLERR | POLLHUP | POLLNVAL))) {
      error_ = "the camera stopped (unplugged?)";
      return false;
    }
    v4l2_buffer buf{};
    buf.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    buf.memory = V4L2_MEMORY_MMAP;
    if (xioctl(fd_, VIDIOC_DQBUF, &buf) < 0) {
      if (errno == EAGAIN) continue;
      error_ = "cannot take a frame (" + errno_text() + ")";
      return false;
    }
    std::string why;
    cv::Mat frame;
    if (buf.index < buffers_.size() && !(buf.flags & V4L2_BUF_FLAG_ERROR))
      frame = v4l2_frame_to_bgr(fourcc_, static_cast<const uint8_t*>(buffers_[buf.index].start),
                                std::min<size_t>(buf.bytesused, buffers_[buf.index].length), width_, height_,
                                bytes_per_line_, &why);
    if (xioctl(fd_, VIDIOC_QBUF, &buf) < 0) {  // hand the buffer back before anything else
      error_ = "cannot requeue a buffer (" + errno_text() + ")";
      return false;
    }
    if (!frame.empty()) {
      bgr = frame;
      return true;
    }
    ++damaged;
  }
  error_ = "the camera sends damaged frames";
  return false;
}

void V4l2Camera::close() {
  if (fd_ < 0) return;
  if (streaming_) {
    v4l2_buf_type type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    xioctl(fd_, VIDIOC_STREAMOFF, &type);
    streaming_ = false;
  }
  for (const auto& b : buffers_) munmap(b.start, b.length);
  buffers_.clear();
  ::close(fd_);
  fd_ = -1;
}

}  // namespace maskwatch
