#include "vision/recorder.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <opencv2/imgproc.hpp>

#include "util/error.h"

namespace maskwatch {

VideoRecorder::VideoRecorder(std::filesystem::path path, double fps)
    : path_(std::move(path)), fps_(fps > 0 ? fps : 15) {
  std::string ext = path_.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  if (ext == ".mp4" || ext == ".m4v" || ext == ".mov")
    fourcc_ = cv::VideoWriter::fourcc('m', 'p', '4', 'v');
  else if (ext == ".avi")
    fourcc_ = cv::VideoWriter::fourcc('M', 'J', 'P', 'G');
  else
    throw Error("recording needs a .mp4, .m4v, .mov or .avi file name, not " + path_.string());
  tmp_ = path_.parent_path() / ("." + path_.stem().string() + ".part" + ext);
  if (path_.has_parent_path()) std::filesystem::create_directories(path_.parent_path());
}

VideoRecorder::~VideoRecorder() {
  try {
    close();
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
  }
}

void VideoRecorder::write(const cv::Mat& frame) {
  if (!writer_.isOpened()) {
    if (frames_ > 0) return;  // closed already
    size_ = frame.size();
    writer_.open(tmp_.string(), cv::CAP_FFMPEG, fourcc_, fps_, size_);
    if (!writer_.isOpened()) throw Error("cannot write video " + path_.string());
  }
  if (frame.size() != size_) {
    cv::Mat resized;
    cv::resize(frame, resized, size_);
    writer_.write(resized);
  } else {
    writer_.write(frame);
  }
  ++frames_;
}

void VideoRecorder::close() {
  if (!writer_.isOpened()) return;
  writer_.release();
  std::error_code ec;
  std::filesystem::rename(tmp_, path_, ec);
  if (ec) throw Error("cannot move recording into place at " + path_.string() + ": " + ec.message());
}

}  // namespace maskwatch
