#include "media/image_codec.h"

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <string_view>
// jpeglib.h needs FILE and size_t declared first.
#include <jpeglib.h>
#include <jerror.h>  // the warning codes
#include <png.h>

#include <fmt/format.h>

#include "util/error.h"

namespace maskwatch {

bool is_jpeg(const uint8_t* d, size_t n) { return n > 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF; }
bool is_png(const uint8_t* d, size_t n) { return n > 8 && d[0] == 0x89 && d[1] == 'P' && d[2] == 'N' && d[3] == 'G'; }

namespace {

// ---- JPEG ----------------------------------------------------------------------------
// libjpeg reports errors through a callback that must not return: it longjmps back to the
// step that failed. Each step is a small function with no C++ objects alive across setjmp.
struct JpegErrors {
  jpeg_error_mgr mgr;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  // libjpeg decodes past missing or corrupt data without an error, filling what it lost with
  // grey: those warnings are kept (a harmless one, such as bytes before a marker, is not).
  bool ended_early;              // the data stops before the image does (a cut file)
  char damage[JMSG_LENGTH_MAX];  // the first warning that loses pixels, else ""
};

extern "C" void jpeg_fail(j_common_ptr info) {
  auto* e = reinterpret_cast<JpegErrors*>(info->err);
  (*info->err->format_message)(info, e->message);
  longjmp(e->jump, 1);
}
// Warnings are not errors, and libjpeg's own line on stderr is not ours: noted, not printed.
extern "C" void jpeg_note_warning(j_common_ptr info, int level) {
  if (level >= 0) return;  // trace messages
  auto* e = reinterpret_cast<JpegErrors*>(info->err);
  const int code = info->err->msg_code;
  if (code == JWRN_JPEG_EOF)
    e->ended_early = true;
  else if ((code == JWRN_HIT_MARKER || code == JWRN_MUST_RESYNC || code == JWRN_HUFF_BAD_CODE
#if JPEG_LIB_VERSION >= 70 || defined(D_ARITH_CODING_SUPPORTED)
            || code == JWRN_ARITH_BAD_CODE
#endif
            ) && !e->damage[0])
    (*info->err->format_message)(info, e->damage);
}

bool jpeg_read_header_from(jpeg_decompress_struct* d, JpegErrors* e, const uint8_t* data, size_t size) {
  if (setjmp(e->jump)) return false;
  jpeg_mem_src(d, data, static_cast<unsigned long>(size));
  jpeg_save_markers(d, JPEG_APP0 + 1, 0xFFFF);  // EXIF
  jpeg_read_header(d, TRUE);
  return true;
}

bool jpeg_start(jpeg_decompress_struct* d, JpegErrors* e, bool cmyk) {
  if (setjmp(e->jump)) return false;
  d->out_color_space = cmyk ? JCS_CMYK : JCS_EXT_BGR;  // as OpenCV: straight to BGR
  jpeg_start_decompress(d);
  return true;
}

bool jpeg_read_rows(jpeg_decompress_struct* d, JpegErrors* e, uint8_t* dst, size_t step) {
  if (setjmp(e->jump)) return false;
  while (d->output_scanline < d->output_height) {
    JSAMPROW row = dst + static_cast<size_t>(d->output_scanline) * step;
    jpeg_read_scanlines(d, &row, 1);
  }
  jpeg_finish_decompress(d);
  return true;
}

// The EXIF orientation tag (1-8) from an APP1 marker; 1 when absent or unreadable.
int exif_orientation(const jpeg_decompress_struct* d) {
  for (auto* m = d->marker_list; m; m = m->next) {
    if (m->marker != JPEG_APP0 + 1 || m->data_length < 14 || std::memcmp(m->data, "Exif\0\0", 6) != 0) continue;
    const uint8_t* t = m->data + 6;
    const size_t n = m->data_length - 6;
    const bool le = t[0] == 'I' && t[1] == 'I';
    if (!le && !(t[0] == 'M' && t[1] == 'M')) return 1;
    const auto u16 = [&](size_t at) -> uint32_t { return le ? t[at] | t[at + 1] << 8 : t[at] << 8 | t[at + 1]; };
    const auto u32 = [&](size_t at) -> uint32_t {
      return le ? u16(at) | u16(at + 2) << 16 : u16(at) << 16 | u16(at + 2);
    };
    const size_t ifd = u32(4);
    if (ifd + 2 > n) return 1;
    const size_t entries = u16(ifd);
    for (size_t i = 0; i < entries && ifd + 2 + (i + 1) * 12 <= n; ++i) {
      const size_t at = ifd + 2 + i * 12;
      if (u16(at) == 0x0112) {
        const uint32_t v = u16(at + 8);
        return v >= 1 && v <= 8 ? static_cast<int>(v) : 1;
      }
    }
    return 1;
  }
  return 1;
}

// What cv::imread does for each EXIF orientation.
void apply_orientation(cv::Mat& img, int orientation) {
  switch (orientation) {
    case 2: cv::flip(img, img, 1); break;
    case 3: cv::flip(img, img, -1); break;
    case 4: cv::flip(img, img, 0); break;
    case 5: cv::transpose(img, img); break;
    case 6: cv::transpose(img, img), cv::flip(img, img, 1); break;
    case 7: cv::transpose(img, img), cv::flip(img, img, -1); break;
    case 8: cv::transpose(img, img), cv::flip(img, img, 0); break;
    default: break;
  }
}

// Adobe's inverted CMYK as OpenCV converts it.
cv::Mat cmyk_to_bgr(const cv::Mat& cmyk) {
  cv::Mat bgr(cmyk.size(), CV_8UC3);
  for (int y = 0; y < cmyk.rows; ++y) {
    const uint8_t* s = cmyk.ptr<uint8_t>(y);
    uint8_t* o = bgr.ptr<uint8_t>(y);
    for (int x = 0; x < cmyk.cols; ++x, s += 4, o += 3) {
      const int k = s[3];
      o[2] = static_cast<uint8_t>(k - ((255 - s[0]) * k >> 8));
      o[1] = static_cast<uint8_t>(k - ((255 - s[1]) * k >> 8));
      o[0] = static_cast<uint8_t>(k - ((255 - s[2]) * k >> 8));
    }
  }
  return bgr;
}

// A header may claim any size; more pixels than this is refused before memory is taken
// (OpenCV refuses above 2^30; a photo of 268 megapixels is already far beyond a face).
constexpr uint64_t kMaxPixels = uint64_t{1} << 28;

bool set_why(std::string* why, std::string text) {
  if (why) *why = std::move(text);
  return false;
}

// ---- PNG -----------------------------------------------------------------------------
struct PngReadState {
  const uint8_t* data;
  size_t size, pos;
};

extern "C" void png_read_memory(png_structp png, png_bytep out, png_size_t n) {
  auto* s = static_cast<PngReadState*>(png_get_io_ptr(png));
  if (n > s->size - s->pos) png_error(png, "file ends early");
  std::memcpy(out, s->data + s->pos, n);
  s->pos += n;
}
extern "C" void png_write_memory(png_structp png, png_bytep in, png_size_t n) {
  auto* out = static_cast<std::vector<uint8_t>*>(png_get_io_ptr(png));
  out->insert(out->end(), in, in + n);
}
extern "C" void png_flush_nothing(png_structp) {}
extern "C" void png_quiet(png_structp, png_const_charp) {}
// libpng's message is kept (the error pointer, when given, is a PngMessage) and said by the caller.
struct PngMessage {
  char text[256] = {};
};
extern "C" void png_fail(png_structp png, png_const_charp message) {
  if (auto* m = static_cast<PngMessage*>(png_get_error_ptr(png)); m && message)
    std::snprintf(m->text, sizeof m->text, "%s", message);
  png_longjmp(png, 1);
}

struct PngInfo {
  png_uint_32 width = 0, height = 0;
  int channels = 0, depth = 0;
};

// libpng longjmps on errors: header + transforms, then rows, each guarded separately.
bool png_read_header_from(png_structp png, png_infop info, PngReadState* state, PngInfo* out) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_read_fn(png, state, png_read_memory);
  png_read_info(png, info);
  const int color = png_get_color_type(png, info);
  const int depth = png_get_bit_depth(png, info);
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  const bool trns = png_get_valid(png, info, PNG_INFO_tRNS) != 0;
  if (trns) png_set_tRNS_to_alpha(png);
  // Gray with alpha would come back as 2 channels: widen to BGRA.
  if (color == PNG_COLOR_TYPE_GRAY_ALPHA || (color == PNG_COLOR_TYPE_GRAY && trns)) png_set_gray_to_rgb(png);
  if (depth == 16) png_set_swap(png);  // little-endian 16-bit samples for CV_16U
  png_set_bgr(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  out->width = png_get_image_width(png, info);
  out->height = png_get_image_height(png, info);
  out->channels = png_get_channels(png, info);
  out->depth = png_get_bit_depth(png, info);
  return true;
}

bool png_read_rows(png_structp png, png_infop info, png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_image(png, rows);
  png_read_end(png, info);
  return true;
}

bool png_write_all(png_structp png, png_infop info, const cv::Mat* img, int color, png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_IHDR(png, info, static_cast<png_uint_32>(img->cols), static_cast<png_uint_32>(img->rows), 8, color,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_set_compression_level(png, 3);  // plots and snapshots: fast, still small
  png_write_info(png, info);
  if (img->channels() >= 3) png_set_bgr(png);
  png_write_image(png, rows);
  png_write_end(png, info);
  return true;
}

bool jpeg_compress_all(jpeg_compress_struct* c, JpegErrors* e, const cv::Mat* img, int quality, unsigned char** out,
                       unsigned long* size) {
  if (setjmp(e->jump)) return false;
  jpeg_mem_dest(c, out, size);
  c->image_width = static_cast<JDIMENSION>(img->cols);
  c->image_height = static_cast<JDIMENSION>(img->rows);
  c->input_components = img->channels();
  c->in_color_space = img->channels() == 3 ? JCS_EXT_BGR : JCS_GRAYSCALE;
  jpeg_set_defaults(c);
  jpeg_set_quality(c, quality, TRUE);
  jpeg_start_compress(c, TRUE);
  while (c->next_scanline < c->image_height) {
    JSAMPROW row = const_cast<uint8_t*>(img->ptr<uint8_t>(static_cast<int>(c->next_scanline)));
    jpeg_write_scanlines(c, &row, 1);
  }
  jpeg_finish_compress(c);
  return true;
}

}  // namespace

cv::Mat decode_jpeg(const uint8_t* data, size_t size, std::string* why, std::string* warning) {
  jpeg_decompress_struct d{};
  JpegErrors e{};
  d.err = jpeg_std_error(&e.mgr);
  e.mgr.error_exit = jpeg_fail;
  e.mgr.emit_message = jpeg_note_warning;
  jpeg_create_decompress(&d);
  cv::Mat img;
  bool ok = jpeg_read_header_from(&d, &e, data, size);
  // Saved markers live in libjpeg's per-image pool, which jpeg_finish_decompress frees.
  const int orientation = ok ? exif_orientation(&d) : 1;
  const bool cmyk = ok && d.num_components == 4;
  const bool too_large = ok && uint64_t{d.image_width} * d.image_height > kMaxPixels;
  ok = ok && !too_large && jpeg_start(&d, &e, cmyk);
  if (ok) {
    img.create(static_cast<int>(d.output_height), static_cast<int>(d.output_width), cmyk ? CV_8UC4 : CV_8UC3);
    ok = jpeg_read_rows(&d, &e, img.data, img.step);
  }
  jpeg_destroy_decompress(&d);
  if (!ok) {
    set_why(why, too_large ? fmt::format("JPEG decoder: image too large ({} x {} pixels; at most {} megapixels)", d.image_width, d.image_height, kMaxPixels / 1000000)
                           : std::string("JPEG decoder: ") + e.message);
    return {};
  }
  if (warning && e.ended_early)
    *warning = "truncated JPEG (missing rows decode as grey)";
  else if (warning && e.damage[0])
    *warning = fmt::format("damaged JPEG data ({}): the rows after it decode as grey or garbled", e.damage);
  if (cmyk) img = cmyk_to_bgr(img);
  apply_orientation(img, orientation);
  return img;
}

cv::Mat decode_png(const uint8_t* data, size_t size, std::string* why) {
  PngMessage message;
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &message, png_fail, png_quiet);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!info) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    set_why(why, "out of memory");
    return {};
  }
  PngReadState state{data, size, 0};
  PngInfo h;
  cv::Mat img;
  std::vector<png_bytep> rows;
  // Which of corrupt, truncated, too large or unsupported it is, said (it was one line for all).
  std::string problem;
  if (!png_read_header_from(png, info, &state, &h))
    problem = fmt::format("unreadable header ({})", message.text);
  else if (h.width == 0 || h.height == 0 || uint64_t{h.width} * h.height > kMaxPixels)
    problem = fmt::format("image too large ({} x {} pixels; at most {} megapixels)", h.width, h.height,
                          kMaxPixels / 1000000);
  else if (!(h.channels == 1 || h.channels == 3 || h.channels == 4) || !(h.depth == 8 || h.depth == 16))
    problem = fmt::format("unsupported layout ({} channels of {} bits)", h.channels, h.depth);
  if (problem.empty()) {
    img.create(static_cast<int>(h.height), static_cast<int>(h.width),
               CV_MAKETYPE(h.depth == 16 ? CV_16U : CV_8U, h.channels));
    rows.resize(h.height);
    for (png_uint_32 y = 0; y < h.height; ++y) rows[y] = img.ptr<uint8_t>(static_cast<int>(y));
    if (!png_read_rows(png, info, rows.data()))
      problem = std::string_view(message.text) == "file ends early"
                    ? "truncated (the file ends before the last row)"
                    : fmt::format("corrupt pixel data ({})", message.text);
  }
  png_destroy_read_struct(&png, &info, nullptr);
  if (!problem.empty()) {
    set_why(why, "PNG decoder: " + problem);
    return {};
  }
  return img;
}

std::vector<uint8_t> encode_jpeg(const cv::Mat& image, int quality) {
  if (image.empty() || image.depth() != CV_8U || (image.channels() != 3 && image.channels() != 1))
    throw Error("JPEG encoder: needs an 8-bit gray or BGR image");
  jpeg_compress_struct c{};
  JpegErrors e{};
  c.err = jpeg_std_error(&e.mgr);
  e.mgr.error_exit = jpeg_fail;
  jpeg_create_compress(&c);
  unsigned char* out = nullptr;
  unsigned long size = 0;
  const bool ok = jpeg_compress_all(&c, &e, &image, quality, &out, &size);
  jpeg_destroy_compress(&c);
  std::vector<uint8_t> bytes;
  if (ok) bytes.assign(out, out + size);
  std::free(out);
  if (!ok) throw Error(std::string("JPEG encoder: ") + e.message);
  return bytes;
}

std::vector<uint8_t> encode_png(const cv::Mat& image) {
  const int ch = image.channels();
  if (image.empty() || image.depth() != CV_8U || (ch != 1 && ch != 3 && ch != 4))
    throw Error("PNG encoder: needs an 8-bit gray, BGR or BGRA image");
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, png_fail, png_quiet);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!info) {
    png_destroy_write_struct(&png, nullptr);
    throw Error("PNG encoder: out of memory");
  }
  std::vector<uint8_t> bytes;
  std::vector<png_bytep> rows(static_cast<size_t>(image.rows));
  for (int y = 0; y < image.rows; ++y) rows[static_cast<size_t>(y)] = const_cast<png_bytep>(image.ptr<uint8_t>(y));
  png_set_write_fn(png, &bytes, png_write_memory, png_flush_nothing);
  const int color = ch == 1 ? PNG_COLOR_TYPE_GRAY : ch == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_RGB_ALPHA;
  const bool ok = png_write_all(png, info, &image, color, rows.data());
  png_destroy_write_struct(&png, &info);
  if (!ok) throw Error("PNG encoder: failed");
  return bytes;
}

}  // namespace maskwatch
