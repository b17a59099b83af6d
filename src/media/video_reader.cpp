#include "media/video_reader.h"

#include "media/ffmpeg_util.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavdevice/version.h>
#include <libavformat/avformat.h>
#include <libavutil/display.h>
#include <libavutil/error.h>
#include <libswscale/swscale.h>
}
#include <dlfcn.h>
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>

namespace maskwatch {
namespace {

using Clock = std::chrono::steady_clock;

// FFmpeg's V4L2 input lives in libavdevice, whose dependencies (SDL, X11, PulseAudio,
// OpenAL...) cost 17 MiB resident: loaded only for a camera V4l2Camera cannot read (neither
// YUYV nor MJPEG). nullptr when it is not installed.
const AVInputFormat* camera_input_format() {
  static const AVInputFormat* format = [] {
    const std::string name = "libavdevice.so." + std::to_string(LIBAVDEVICE_VERSION_MAJOR);
    void* lib = dlopen(name.c_str(), RTLD_NOW | RTLD_GLOBAL);
    if (!lib) return static_cast<const AVInputFormat*>(nullptr);
    using RegisterAll = void (*)();
    if (auto reg = reinterpret_cast<RegisterAll>(dlsym(lib, "avdevice_register_all"))) reg();
    return av_find_input_format("video4linux2");
  }();
  return format;
}

}  // namespace

struct VideoReader::Impl {
  AVFormatContext* format = nullptr;
  AVCodecContext* decoder = nullptr;
  SwsContext* sws = nullptr;
  AVPacket* packet = nullptr;
  AVFrame* frame = nullptr;
  AVIOContext* memory_io = nullptr;
  std::vector<uint8_t> memory;
  size_t memory_pos = 0;
  int stream = -1;
  double fps = 0;
  // Phones record upright video as landscape pixels plus a display matrix that players apply:
  // frames are turned the same way (they were analysed sideways, faces not found).
  int rotate_code = -1;  // cv::RotateFlags, or -1 for none
  double time_base = 0, start_pts = 0;
  double frame_time = std::numeric_limits<double>::quiet_NaN();
  int read_timeout_ms = 0;
  bool draining = false;
  bool clean_eof = false;  // the demuxer said AVERROR_EOF (not an error nor a time-out)
  int64_t damaged_packets = 0;  // of the video stream, the decoder refused (skipped)
  Clock::time_point deadline;
  bool has_deadline = false;
  std::string error;

  ~Impl() { close(); }

  void close() {
    sws_freeContext(sws);
    sws = nullptr;
    av_frame_free(&frame);
    av_packet_free(&packet);
    avcodec_free_context(&decoder);
    if (format) avformat_close_input(&format);  // custom I/O (memory_io) is ours to free
    if (memory_io) {
      av_freep(&memory_io->buffer);
      avio_context_free(&memory_io);
    }
    memory.clear();
    memory_pos = 0;
    stream = -1;
    fps = 0;
    rotate_code = -1;
    time_base = start_pts = 0;
    frame_time = std::numeric_limits<double>::quiet_NaN();
    draining = false;
    clean_eof = false;
    damaged_packets = 0;
    has_deadline = false;
  }

  void arm(int timeout_ms) {
    has_deadline = timeout_ms > 0;
    if (has_deadline) deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  }
  static int interrupted(void* self) {
    const auto* m = static_cast<const Impl*>(self);
    return m->has_deadline && Clock::now() > m->deadline ? 1 : 0;
  }

  bool fail(std::string why) {
    error = std::move(why);
    close();
    return false;
  }

  // After avformat_open_input: the best video stream and its decoder.
  bool open_decoder(int threads) {
    int r = avformat_find_stream_info(format, nullptr);
    if (r < 0) return fail("cannot read stream information (" + av_error_text(r) + ")");
    const AVCodec* codec = nullptr;
    stream = av_find_best_stream(format, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (stream < 0 || !codec) return fail("no video stream FFmpeg can decode");
    AVStream* st = format->streams[stream];
    decoder = avcodec_alloc_context3(codec);
    if (!decoder || avcodec_parameters_to_context(decoder, st->codecpar) < 0) return fail("cannot set up the decoder");
    decoder->thread_count = threads;
    r = avcodec_open2(decoder, codec, nullptr);
    if (r < 0) return fail(fmt::format("cannot open the {} decoder ({})", codec->name, av_error_text(r)));
    fps = av_q2d(st->avg_frame_rate);
    if (!(fps > 0)) fps = av_q2d(av_guess_frame_rate(format, st, nullptr));
    if (!(fps > 0)) fps = 0;
    time_base = av_q2d(st->time_base);
    start_pts = st->start_time == AV_NOPTS_VALUE ? 0 : static_cast<double>(st->start_time);
    if (const uint8_t* matrix = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, nullptr)) {
      // av_display_rotation_get: counter-clockwise degrees; players turn the picture back by it.
      const double ccw = av_display_rotation_get(reinterpret_cast<const int32_t*>(matrix));
      const long clockwise = std::lround(std::fmod(std::fmod(-ccw, 360.0) + 360.0, 360.0) / 90.0) % 4;
      rotate_code = clockwise == 1   ? cv::ROTATE_90_CLOCKWISE
                    : clockwise == 2 ? cv::ROTATE_180
                    : clockwise == 3 ? cv::ROTATE_90_COUNTERCLOCKWISE
                                     : -1;
    }
    packet = av_packet_alloc();
    frame = av_frame_alloc();
    if (!packet || !frame) return fail("out of memory");
    return true;
  }

  bool to_bgr(cv::Mat& out) {
    const int w = frame->width, h = frame->height;
    if (w <= 0 || h <= 0) return false;
    // The same conversion as OpenCV's FFmpeg backend, so frames match it bit for bit.
    sws = sws_getCachedContext(sws, w, h, static_cast<AVPixelFormat>(frame->format), w, h, AV_PIX_FMT_BGR24,
                               SWS_BICUBIC, nullptr, nullptr, nullptr);
    if (!sws) return false;
    // Always fresh (callers keep earlier frames). swscale's SIMD writes rows in blocks and may
    // run up to a block past the end of the last row (valgrind: 8 bytes past a 360-px-wide
    // frame, which corrupted the heap): spare rows after the picture take that, and a row
    // range of a continuous Mat stays continuous.
    const int spare_rows = 1 + 64 / (3 * w);
    out = cv::Mat(h + spare_rows, w, CV_8UC3).rowRange(0, h);
    uint8_t* dst[4] = {out.data, nullptr, nullptr, nullptr};
    const int dst_stride[4] = {static_cast<int>(out.step), 0, 0, 0};
    sws_scale(sws, frame->data, frame->linesize, 0, h, dst, dst_stride);
    if (rotate_code >= 0) {
      cv::Mat turned;
      cv::rotate(out, turned, rotate_code);
      out = turned;
    }
    const int64_t pts = frame->best_effort_timestamp;
    frame_time = pts == AV_NOPTS_VALUE || !(time_base > 0) ? std::numeric_limits<double>::quiet_NaN()
                                                           : (static_cast<double>(pts) - start_pts) * time_base;
    return true;
  }

  static int read_memory(void* self, uint8_t* buf, int size) {
    auto* m = static_cast<Impl*>(self);
    const size_t n = std::min(static_cast<size_t>(size), m->memory.size() - m->memory_pos);
    if (n == 0) return AVERROR_EOF;
    std::memcpy(buf, m->memory.data() + m->memory_pos, n);
    m->memory_pos += n;
    return static_cast<int>(n);
  }
  static int64_t seek_memory(void* self, int64_t offset, int whence) {
    auto* m = static_cast<Impl*>(self);
    const auto size = static_cast<int64_t>(m->memory.size());
    if (whence == AVSEEK_SIZE) return size;
    int64_t pos = offset;
    if ((whence & ~AVSEEK_FORCE) == SEEK_CUR) pos += static_cast<int64_t>(m->memory_pos);
    if ((whence & ~AVSEEK_FORCE) == SEEK_END) pos += size;
    if (pos < 0 || pos > size) return AVERROR(EINVAL);
    m->memory_pos = static_cast<size_t>(pos);
    return pos;
  }
};

VideoReader::VideoReader() : impl_(std::make_unique<Impl>()) {}
VideoReader::~VideoReader() = default;

bool VideoReader::open(const std::string& url, const VideoReaderOptions& o) {
  init_ffmpeg();
  auto& m = *impl_;
  m.close();
  m.error.clear();
  m.read_timeout_ms = o.read_timeout_ms;
  const AVInputFormat* input = nullptr;
  AVDictionary* options = nullptr;
  if (o.camera) {
    input = camera_input_format();
    if (!input) return m.fail("camera input unavailable (libavdevice is not installed)");
    if (o.width > 0 && o.height > 0)
      av_dict_set(&options, "video_size", fmt::format("{}x{}", o.width, o.height).c_str(), 0);
  } else if (url.rfind("rtsp://", 0) == 0) {
    av_dict_set(&options, "rtsp_transport", "tcp", 0);  // as OpenCV does: no lost UDP packets
  }
  m.format = avformat_alloc_context();
  if (!m.format) return m.fail("out of memory");
  m.format->interrupt_callback = {&Impl::interrupted, &m};
  m.arm(o.open_timeout_ms);
  const int r = avformat_open_input(&m.format, url.c_str(), input, &options);  // frees format on failure
  av_dict_free(&options);
  if (r < 0) {
    m.format = nullptr;
    return m.fail(r == AVERROR_EXIT ? "no answer in time" : av_error_text(r));
  }
  const bool ok = m.open_decoder(o.decoder_threads);
  m.has_deadline = false;
  return ok;
}

bool VideoReader::open_memory(std::vector<uint8_t> bytes) {
  init_ffmpeg();
  auto& m = *impl_;
  m.close();
  m.error.clear();
  m.memory = std::move(bytes);
  constexpr int kBuffer = 64 * 1024;
  auto* buffer = static_cast<unsigned char*>(av_malloc(kBuffer));
  m.memory_io =
      buffer ? avio_alloc_context(buffer, kBuffer, 0, &m, &Impl::read_memory, nullptr, &Impl::seek_memory) : nullptr;
  if (!m.memory_io) {
    av_free(buffer);
    return m.fail("out of memory");
  }
  m.format = avformat_alloc_context();
  if (!m.format) return m.fail("out of memory");
  m.format->pb = m.memory_io;
  m.format->flags |= AVFMT_FLAG_CUSTOM_IO;
  const int r = avformat_open_input(&m.format, "", nullptr, nullptr);
  if (r < 0) {
    m.format = nullptr;
    return m.fail(av_error_text(r));
  }
  return m.open_decoder(1);
}

bool VideoReader::read(cv::Mat& bgr) {
  auto& m = *impl_;
  if (!m.format) return false;
  int bad_packets = 0;
  for (;;) {
    int r = avcodec_receive_frame(m.decoder, m.frame);
    if (r == 0) return m.to_bgr(bgr);
    if (r == AVERROR_EOF || m.draining) return false;
    if (r != AVERROR(EAGAIN)) {
      m.error = "decoder: " + av_error_text(r);
      return false;
    }
    m.arm(m.read_timeout_ms);
    r = av_read_frame(m.format, m.packet);
    m.has_deadline = false;
    if (r < 0) {  // the end, a dropped connection or a time-out: return what the decoder holds
      if (r != AVERROR_EOF) m.error = r == AVERROR_EXIT ? "read timed out" : av_error_text(r);
      m.clean_eof = r == AVERROR_EOF;
      m.draining = true;
      avcodec_send_packet(m.decoder, nullptr);
      continue;
    }
    if (m.packet->stream_index == m.stream) {
      r = avcodec_send_packet(m.decoder, m.packet);
      // A damaged packet (a stream joined mid-GOP, a cut file) is skipped, as players do.
      if (r < 0 && r != AVERROR(EAGAIN)) ++m.damaged_packets;
      if (r < 0 && r != AVERROR(EAGAIN) && ++bad_packets > 4096) {
        av_packet_unref(m.packet);
        m.error = "decoder: " + av_error_text(r);
        return false;
      }
    }
    av_packet_unref(m.packet);
  }
}

bool VideoReader::is_open() const { return impl_->format != nullptr; }
void VideoReader::close() { impl_->close(); }
double VideoReader::fps() const { return impl_->fps; }
bool VideoReader::quarter_turned() const {
  return impl_->rotate_code == cv::ROTATE_90_CLOCKWISE || impl_->rotate_code == cv::ROTATE_90_COUNTERCLOCKWISE;
}
int VideoReader::width() const {
  return impl_->decoder ? (quarter_turned() ? impl_->decoder->height : impl_->decoder->width) : 0;
}
int VideoReader::height() const {
  return impl_->decoder ? (quarter_turned() ? impl_->decoder->width : impl_->decoder->height) : 0;
}
double VideoReader::frame_time_s() const { return impl_->frame_time; }
bool VideoReader::is_recording() const {
  const auto& m = *impl_;
  return m.format && m.format->duration != AV_NOPTS_VALUE && m.format->duration > 0;
}
bool VideoReader::ended_recording() const { return impl_->clean_eof && is_recording(); }
int64_t VideoReader::listed_frames() const {
  const auto& m = *impl_;
  return m.format && m.stream >= 0 ? std::max<int64_t>(0, m.format->streams[m.stream]->nb_frames) : 0;
}
int64_t VideoReader::damaged_packets() const { return impl_->damaged_packets; }
const std::string& VideoReader::error() const { return impl_->error; }

}  // namespace maskwatch
