#include "media/area_resize.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <opencv2/imgproc.hpp>
#include <vector>

namespace maskwatch {

namespace {

// The source pixels one output pixel of an axis covers and their weights (the share of the
// output cell each covers, summing to 1). The weights are those of OpenCV's INTER_AREA: the
// cell of output i spans [i s, (i + 1) s) with s = source / output size; a source pixel
// covered by less than 1/1000 of a pixel at either end is left out; the last cell is cut at
// the image's edge.
struct AxisTaps {
  std::vector<int> first;     // first source index of each output
  std::vector<int> count;     // source pixels it covers
  std::vector<float> weight;  // `stride` per output, the unused ones 0
  int stride = 0;
};

AxisTaps axis_taps(int source, int output) {
  const double scale = static_cast<double>(source) / output;
  AxisTaps t;
  t.stride = static_cast<int>(std::ceil(scale)) + 2;
  t.first.resize(static_cast<size_t>(output));
  t.count.resize(static_cast<size_t>(output));
  t.weight.assign(static_cast<size_t>(output) * static_cast<size_t>(t.stride), 0.0f);
  for (int i = 0; i < output; ++i) {
    const double start = i * scale, end = start + scale;
    const double cell = std::min(scale, source - start);
    const int whole_end = std::min(static_cast<int>(std::floor(end)), source - 1);
    const int whole_start = std::min(static_cast<int>(std::ceil(start)), whole_end);
    float* w = &t.weight[static_cast<size_t>(i) * static_cast<size_t>(t.stride)];
    int n = 0, first = whole_start;
    if (whole_start - start > 1e-3) {
      first = whole_start - 1;
      w[n++] = static_cast<float>((whole_start - start) / cell);
    }
    for (int x = whole_start; x < whole_end; ++x) w[n++] = static_cast<float>(1.0 / cell);
    if (end - whole_end > 1e-3) w[n++] = static_cast<float>(std::min(std::min(end - whole_end, 1.0), cell) / cell);
    t.first[static_cast<size_t>(i)] = first;
    t.count[static_cast<size_t>(i)] = n;
  }
  return t;
}

// Output rows [begin, end): rows first (a weighted sum of whole source rows), then columns.
template <int C>
void shrink_rows(const cv::Mat& src, cv::Mat& dst, const AxisTaps& xs, const AxisTaps& ys, int begin, int end) {
  const int row_len = src.cols * C;
  std::vector<float> acc(static_cast<size_t>(row_len));
  for (int y = begin; y < end; ++y) {
    const float* wy = &ys.weight[static_cast<size_t>(y) * static_cast<size_t>(ys.stride)];
    const int y0 = ys.first[static_cast<size_t>(y)];
    {
      const uint8_t* r = src.ptr<uint8_t>(y0);
      const float w = wy[0];
      for (int i = 0; i < row_len; ++i) acc[static_cast<size_t>(i)] = w * r[i];
    }
    for (int k = 1; k < ys.count[static_cast<size_t>(y)]; ++k) {
      const uint8_t* r = src.ptr<uint8_t>(y0 + k);
      const float w = wy[k];
      float* a = acc.data();
      for (int i = 0; i < row_len; ++i) a[i] += w * r[i];
    }
    uint8_t* out = dst.ptr<uint8_t>(y);
    for (int x = 0; x < dst.cols; ++x) {
      const float* wx = &xs.weight[static_cast<size_t>(x) * static_cast<size_t>(xs.stride)];
      const float* p = acc.data() + static_cast<size_t>(xs.first[static_cast<size_t>(x)]) * C;
      float sum[C] = {};
      for (int k = 0; k < xs.count[static_cast<size_t>(x)]; ++k)
        for (int c = 0; c < C; ++c) sum[c] += wx[k] * p[k * C + c];
      for (int c = 0; c < C; ++c) out[x * C + c] = cv::saturate_cast<uint8_t>(sum[c]);
    }
  }
}

bool whole_ratio(int source, int output) { return source % output == 0; }

}  // namespace

void shrink_area(const cv::Mat& src, cv::Mat& dst, cv::Size size) {
  const int channels = src.channels();
  const bool ours = src.depth() == CV_8U && channels >= 1 && channels <= 4 && !src.empty() && size.width > 0 &&
                    size.height > 0 && size.width <= src.cols && size.height <= src.rows &&
                    !(whole_ratio(src.cols, size.width) && whole_ratio(src.rows, size.height));
  if (!ours) {
    cv::resize(src, dst, size, 0, 0, cv::INTER_AREA);
    return;
  }
  const AxisTaps xs = axis_taps(src.cols, size.width), ys = axis_taps(src.rows, size.height);
  // Written where cv::resize writes: into dst's own pixels when it already has the size and type
  // (a region of a larger image stays one), else into a new buffer. When dst is src itself, or
  // its pixels may overlap src's, the result goes through a buffer of its own first.
  const auto span_overlaps = [](const cv::Mat& a, const cv::Mat& b) {
    const uchar* a_end = a.data + (a.rows - 1) * a.step[0] + a.cols * a.elemSize();
    const uchar* b_end = b.data + (b.rows - 1) * b.step[0] + b.cols * b.elemSize();
    return a.data < b_end && b.data < a_end;
  };
  const bool same_object = &dst == &src;
  const bool in_place = !same_object && dst.size() == size && dst.type() == src.type();
  const bool through_buffer = same_object || (in_place && span_overlaps(dst, src));
  cv::Mat out;
  if (through_buffer) {
    out.create(size, src.type());
  } else {
    dst.create(size, src.type());
    out = dst;
  }
  // Stripes of rows in OpenCV's pool, as cv::resize runs them (its thread count applies); a
  // stripe per 16,384 output pixels: a few per frame, each with one row of sums to allocate.
  const double stripes = std::max(1.0, static_cast<double>(size.area()) / 16384.0);
  cv::parallel_for_(cv::Range(0, size.height), [&](const cv::Range& r) {
    switch (channels) {
      case 1: shrink_rows<1>(src, out, xs, ys, r.start, r.end); break;
      case 2: shrink_rows<2>(src, out, xs, ys, r.start, r.end); break;
      case 3: shrink_rows<3>(src, out, xs, ys, r.start, r.end); break;
      default: shrink_rows<4>(src, out, xs, ys, r.start, r.end); break;
    }
  }, stripes);
  if (same_object)
    dst = out;
  else if (through_buffer)
    out.copyTo(dst);
}

}  // namespace maskwatch
