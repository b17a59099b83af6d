#include "media/video_writer.h"

#include "media/ffmpeg_util.h"
#include "util/files.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/error.h>
#include <libswscale/swscale.h>
}
#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <cmath>

namespace maskwatch {

struct VideoWriter::Impl {
  AVFormatContext* format = nullptr;
  AVCodecContext* encoder = nullptr;
  AVStream* stream = nullptr;
  SwsContext* sws = nullptr;
  AVFrame* frame = nullptr;
  AVPacket* packet = nullptr;
  cv::Size size;
  int64_t next_pts = 0;
  bool header_written = false;
  std::string error;

  ~Impl() { release(); }

  void release() {
    sws_freeContext(sws);
    sws = nullptr;
    av_frame_free(&frame);
    av_packet_free(&packet);
    avcodec_free_context(&encoder);
    if (format) {
      if (format->pb) avio_closep(&format->pb);
      avformat_free_context(format);
      format = nullptr;
    }
    stream = nullptr;
    next_pts = 0;
    header_written = false;
  }

  bool fail(std::string why) {
    error = std::move(why);
    release();
    return false;
  }

  // Sends one frame (nullptr: flush) and writes every packet the encoder has ready.
  bool encode(const AVFrame* f) {
    int r = avcodec_send_frame(encoder, f);
    if (r < 0) return fail("encoder: " + av_error_text(r));
    for (;;) {
      r = avcodec_receive_packet(encoder, packet);
      if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) return true;
      if (r < 0) return fail("encoder: " + av_error_text(r));
      if (packet->duration == 0) packet->duration = 1;  // one frame: lets players count the last frame's time
      av_packet_rescale_ts(packet, encoder->time_base, stream->time_base);
      packet->stream_index = stream->index;
      r = av_interleaved_write_frame(format, packet);  // takes the packet's data
      if (r < 0) return fail("cannot write: " + av_error_text(r));
    }
  }
};

VideoWriter::VideoWriter() : impl_(std::make_unique<Impl>()) {}

VideoWriter::~VideoWriter() { close(); }

bool VideoWriter::supports(const std::filesystem::path& path) {
  const std::string ext = lower_extension(path);
  return ext == ".mp4" || ext == ".m4v" || ext == ".mov" || ext == ".avi";
}

bool VideoWriter::open(const std::filesystem::path& path, double fps, cv::Size size,
                       const VideoWriterOptions& options) {
  init_ffmpeg();
  auto& m = *impl_;
  m.release();
  m.error.clear();
  if (!supports(path)) return m.fail("unknown video extension: " + path.string());
  if (options.fragmented && options.for_browsers) return m.fail("a fragmented video is not one for browsers");
  if (size.width < 2 || size.height < 2 || size.width % 2 || size.height % 2)
    return m.fail(fmt::format("frame size {}x{} cannot be encoded (even sizes >= 2 only)", size.width, size.height));
  const bool mjpeg = lower_extension(path) == ".avi";
  int r = avformat_alloc_output_context2(&m.format, nullptr, nullptr, path.c_str());
  if (r < 0 || !m.format) return m.fail("no container for " + path.string());
  const bool h264 = !mjpeg && options.for_browsers;
  const AVCodec* codec = avcodec_find_encoder(mjpeg ? AV_CODEC_ID_MJPEG : h264 ? AV_CODEC_ID_H264 : AV_CODEC_ID_MPEG4);
  if (!codec) return m.fail(h264 ? "FFmpeg has no H.264 encoder (libx264)" : "FFmpeg has no encoder for this format");
  m.stream = avformat_new_stream(m.format, nullptr);
  m.encoder = avcodec_alloc_context3(codec);
  if (!m.stream || !m.encoder) return m.fail("out of memory");
  auto* c = m.encoder;
  c->width = size.width;
  c->height = size.height;
  c->time_base = av_inv_q(av_d2q(fps > 0 ? fps : 15, 100000));
  c->framerate = av_inv_q(c->time_base);
  c->gop_size = 12;
  c->thread_count = std::max(0, options.threads);
  AVDictionary* codec_options = nullptr;
  if (h264) {
    c->pix_fmt = AV_PIX_FMT_YUV420P;
    c->gop_size = std::max(1, static_cast<int>(std::lround(2 * av_q2d(c->framerate))));  // seek points every 2 s
    // Constant quality: a still scene costs almost nothing, a busy one what it needs. ultrafast:
    // an event clip (50 frames of 640x480) in 144 ms against 412 with veryfast, for files about
    // three times larger (README).
    av_dict_set(&codec_options, "preset", "ultrafast", 0);
    av_dict_set(&codec_options, "crf", "26", 0);
  } else if (mjpeg) {
    c->pix_fmt = AV_PIX_FMT_YUVJ420P;
    c->flags |= AV_CODEC_FLAG_QSCALE;  // constant quality, as a recording should keep detail
    c->global_quality = FF_QP2LAMBDA * 3;
  } else {
    c->pix_fmt = AV_PIX_FMT_YUV420P;
    // About one bit per pixel per frame (what OpenCV's writer asks for): faces stay sharp.
    c->bit_rate = static_cast<int64_t>(std::min(av_q2d(c->framerate) * size.area(), static_cast<double>(INT_MAX)));
  }
  if (m.format->oformat->flags & AVFMT_GLOBALHEADER) c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  r = avcodec_open2(c, codec, &codec_options);
  av_dict_free(&codec_options);
  if (r < 0) return m.fail("cannot open the encoder: " + av_error_text(r));
  if (avcodec_parameters_from_context(m.stream->codecpar, c) < 0) return m.fail("cannot set up the stream");
  m.stream->time_base = c->time_base;
  m.stream->avg_frame_rate = c->framerate;
  r = avio_open(&m.format->pb, path.c_str(), AVIO_FLAG_WRITE);
  if (r < 0) return m.fail("cannot create " + path.string() + ": " + av_error_text(r));
  AVDictionary* format_options = nullptr;
  if (options.fragmented && !mjpeg) {
    av_dict_set(&format_options, "movflags", "+frag_keyframe+empty_moov+default_base_moof", 0);
    m.format->flags |= AVFMT_FLAG_FLUSH_PACKETS;  // each fragment reaches the file when it closes
  }
  else if (h264)
    av_dict_set(&format_options, "movflags", "+faststart", 0);
  r = avformat_write_header(m.format, &format_options);
  av_dict_free(&format_options);
  if (r < 0) return m.fail("cannot write the header of " + path.string() + ": " + av_error_text(r));
  m.header_written = true;
  m.frame = av_frame_alloc();
  m.packet = av_packet_alloc();
  if (!m.frame || !m.packet) return m.fail("out of memory");
  m.frame->format = c->pix_fmt;
  m.frame->width = size.width;
  m.frame->height = size.height;
  if (av_frame_get_buffer(m.frame, 0) < 0) return m.fail("out of memory");
  m.sws = sws_getContext(size.width, size.height, AV_PIX_FMT_BGR24, size.width, size.height, c->pix_fmt, SWS_BICUBIC,
                         nullptr, nullptr, nullptr);
  if (!m.sws) return m.fail("cannot convert BGR frames for the encoder");
  m.size = size;
  return true;
}

bool VideoWriter::write(const cv::Mat& bgr) {
  auto& m = *impl_;
  if (!m.encoder) return false;
  if (bgr.type() != CV_8UC3 || bgr.size() != m.size) {
    m.error = fmt::format("frame is {}x{} of type {}, the video is {}x{} BGR", bgr.cols, bgr.rows, bgr.type(),
                          m.size.width, m.size.height);
    return false;
  }
  if (av_frame_make_writable(m.frame) < 0) return m.fail("out of memory");
  const uint8_t* src[4] = {bgr.data, nullptr, nullptr, nullptr};
  const int src_stride[4] = {static_cast<int>(bgr.step), 0, 0, 0};
  sws_scale(m.sws, src, src_stride, 0, m.size.height, m.frame->data, m.frame->linesize);
  m.frame->pts = m.next_pts++;
  return m.encode(m.frame);
}

bool VideoWriter::close() {
  auto& m = *impl_;
  if (!m.encoder) return false;
  bool ok = m.encode(nullptr);
  if (ok && m.header_written) {
    const int r = av_write_trailer(m.format);
    if (r < 0) ok = m.fail("cannot finish the video: " + av_error_text(r));
  }
  m.release();
  return ok;
}

bool VideoWriter::is_open() const { return impl_->encoder != nullptr; }
const std::string& VideoWriter::error() const { return impl_->error; }

}  // namespace maskwatch
