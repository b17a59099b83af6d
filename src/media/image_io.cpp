#include "media/image_io.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <opencv2/imgproc.hpp>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "media/image_codec.h"
#include "media/video_reader.h"
#include "util/error.h"
#include "util/files.h"

namespace maskwatch {

bool is_image_file(const std::filesystem::path& path) {
  static const std::set<std::string> exts = {".jpg",  ".jpeg", ".jpe", ".png", ".bmp", ".webp", ".tif",
                                             ".tiff", ".ppm",  ".pgm", ".pbm", ".pnm", ".jp2"};
  return exts.count(lower_extension(path)) > 0;
}

bool is_video_file(const std::filesystem::path& path) {
  static const std::set<std::string> exts = {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm",
                                             ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ts"};
  return exts.count(lower_extension(path)) > 0;
}

std::vector<std::filesystem::path> list_image_files(const std::filesystem::path& dir, int* skipped) {
  std::vector<std::filesystem::path> files;
  int others = 0, videos = 0;  // plain files that are not images; videos among them
  std::string first_other, first_video;
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec), end;
  if (ec) throw Error("cannot list folder " + dir.string() + ": " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) break;
    std::error_code entry_ec;
    const bool regular = it->is_regular_file(entry_ec);  // follows symlinks; a loop sets entry_ec
    if (entry_ec) {
      if (is_image_file(it->path())) {
        spdlog::warn("skipping {}: {}", it->path().string(), entry_ec.message());
        if (skipped) ++*skipped;
      }
      continue;
    }
    if (regular && is_image_file(it->path()))
      files.push_back(it->path());
    else if (regular && ++others == 1)
      first_other = it->path().filename().string();
    if (regular && is_video_file(it->path()) && ++videos == 1) first_video = it->path().string();
  }
  if (ec) spdlog::warn("listing {} stopped early: {}", dir.string(), ec.message());
  // Said, so that a .gif or a file without an extension is not silently missing from the run.
  if (others > 0)
    spdlog::info("{}: {} file(s) left out, not images by their extension ({}{})", dir.string(), others, first_other,
                 others > 1 ? ", ..." : "");
  if (videos > 0)  // as a video named on the command line is told
    spdlog::warn("{}: {} video(s) not looked at (maskwatch run --source {} looks at every frame)", dir.string(), videos,
                 first_video);
  std::sort(files.begin(), files.end());
  return files;
}

namespace {

// 1/3/4 channels, 8 or 16 bit -> 8-bit BGR; alpha composited over mid grey so transparent
// areas do not turn into whatever colour the encoder left under them.
cv::Mat to_bgr8(const cv::Mat& img) {
  cv::Mat m = img;
  if (m.depth() == CV_16U)
    m.convertTo(m, CV_8U, 1.0 / 257.0);
  else if (m.depth() != CV_8U)
    m.convertTo(m, CV_8U);
  if (m.channels() == 1) {
    cv::cvtColor(m, m, cv::COLOR_GRAY2BGR);
  } else if (m.channels() == 4) {
    cv::Mat bgr(m.size(), CV_8UC3);
    for (int y = 0; y < m.rows; ++y) {
      const auto* s = m.ptr<cv::Vec4b>(y);
      auto* d = bgr.ptr<cv::Vec3b>(y);
      for (int x = 0; x < m.cols; ++x) {
        const int a = s[x][3];
        for (int c = 0; c < 3; ++c) d[x][c] = static_cast<uchar>((s[x][c] * a + 128 * (255 - a) + 127) / 255);
      }
    }
    m = bgr;
  } else if (m.channels() != 3) {
    return {};
  }
  return m;
}

}  // namespace

cv::Mat decode_image(const std::vector<uint8_t>& bytes, std::string* why, std::string* warning) {
  if (bytes.empty()) {
    if (why) *why = "empty file";
    return {};
  }
  // JPEG and PNG (nearly every photo) with libjpeg-turbo / libpng as cv::imread would;
  // BMP, WebP, TIFF, PNM, JPEG 2000 with FFmpeg's image decoders.
  cv::Mat img;
  std::string reason;
  try {
    if (is_jpeg(bytes.data(), bytes.size())) {
      img = decode_jpeg(bytes.data(), bytes.size(), &reason, warning);
    } else if (is_png(bytes.data(), bytes.size())) {
      img = decode_png(bytes.data(), bytes.size(), &reason);
      if (!img.empty()) img = to_bgr8(img);
    } else {
      VideoReader reader;
      if (!reader.open_memory(bytes) || !reader.read(img)) reason = reader.error();
    }
  } catch (const cv::Exception& e) {
    reason = std::string("decoder error: ") + e.err;
    img.release();
  }
  if (img.empty() || img.cols < 1 || img.rows < 1) {
    if (why) *why = reason.empty() ? "cannot be decoded as an image" : reason;
    return {};
  }
  return img;
}

bool has_image_signature(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return true;  // not readable: reading it says why
  unsigned char b[12] = {};
  in.read(reinterpret_cast<char*>(b), sizeof b);
  const auto starts = [&](const char* sig, size_t n, size_t at = 0) {
    return static_cast<size_t>(in.gcount()) >= at + n && std::memcmp(b + at, sig, n) == 0;
  };
  return starts("\xFF\xD8", 2) || starts("\x89PNG", 4) || starts("BM", 2) || starts("II*\0", 4) ||
         starts("MM\0*", 4) || (starts("RIFF", 4) && starts("WEBP", 4, 8)) ||
         (in.gcount() >= 2 && b[0] == 'P' && b[1] >= '1' && b[1] <= '7') || starts("\0\0\0\x0CjP  ", 8) ||
         starts("\xFF\x4F\xFF\x51", 4) || starts("GIF8", 4);
}

namespace {

// Larger files are read only when their first bytes are an image format's: a 1 GB file of
// zeros named .jpg took 2 GB of memory (read, then copied for FFmpeg) before it was refused.
constexpr uintmax_t kMaxUnknownImageBytes = 64u << 20;

}  // namespace

cv::Mat load_image(const std::filesystem::path& path, std::string* why, std::string* warning) {
  std::error_code ec;
  const uintmax_t size = std::filesystem::file_size(path, ec);
  if (!ec && size > kMaxUnknownImageBytes && !has_image_signature(path)) {
    if (why)
      *why = fmt::format("its first bytes are not those of a JPEG, PNG, BMP, TIFF, WebP, PNM, JPEG 2000 or GIF, and at "
                         "{} MB it is too large to try as anything else",
                         size >> 20);
    return {};
  }
  std::vector<uint8_t> bytes;
  try {
    bytes = read_file_bytes(path, "image");
  } catch (const Error& e) {
    if (why) *why = e.what();
    return {};
  }
  return decode_image(bytes, why, warning);
}

cv::Mat load_image_or_throw(const std::filesystem::path& path) {
  std::string why;
  cv::Mat img = load_image(path, &why);
  if (img.empty()) throw Error("cannot read image " + path.string() + ": " + why);
  return img;
}

}  // namespace maskwatch
