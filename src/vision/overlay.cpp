#include "vision/overlay.h"

#include <fmt/format.h>

#include <algorithm>
#include <opencv2/imgproc.hpp>

#include "util/stopwatch.h"

namespace maskwatch {
namespace {

constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;
const cv::Scalar kGreen(60, 180, 40), kRed(40, 40, 220), kAmber(0, 170, 240), kWhite(255, 255, 255), kBlack(0, 0, 0);

const cv::Scalar kPurple(170, 50, 160);

}  // namespace

cv::Scalar verdict_colour(int verdict, const std::vector<std::string>& classes) {
  if (verdict < 0 || static_cast<size_t>(verdict) >= classes.size()) return kAmber;
  if (verdict == mask_class_index(classes)) return kGreen;
  const auto& name = classes[static_cast<size_t>(verdict)];
  if (name.find("incorrect") != std::string::npos) return kPurple;  // a mask, but not over mouth and nose
  if (name.find("without") != std::string::npos || name.find("no_mask") != std::string::npos) return kRed;
  static const cv::Scalar palette[] = {{200, 120, 30}, {30, 120, 200}, {120, 120, 120}};
  return palette[static_cast<size_t>(verdict) % 3];
}

namespace {

// Text on a filled box at `r` (from label_size).
void draw_label(cv::Mat& img, const std::string& text, const cv::Rect& r, cv::Scalar bg, double scale,
                int thickness) {
  int base = 0;
  const cv::Size sz = cv::getTextSize(text, kFont, scale, thickness, &base);
  cv::rectangle(img, r, bg, cv::FILLED);
  cv::putText(img, text, {r.x + 3, r.y + sz.height + 3}, kFont, scale, kWhite, thickness, cv::LINE_AA);
}

// A class as the overlay words it: a three-class model's "mask_worn_incorrectly" says what is
// wrong ("mask below nose"); other names as the model has them.
std::string shown_class_name(const std::string& name) {
  return name.find("incorrect") != std::string::npos ? "mask below nose" : name;
}

cv::Size label_size(const std::string& text, double scale, int thickness) {
  int base = 0;
  const cv::Size sz = cv::getTextSize(text, kFont, scale, thickness, &base);
  return {sz.width + 6, sz.height + base + 6};
}

}  // namespace

int mask_class_index(const std::vector<std::string>& classes) {
  for (size_t i = 0; i < classes.size(); ++i)
    if (classes[i].find("with") != std::string::npos && classes[i].find("without") == std::string::npos)
      return static_cast<int>(i);
  return 0;
}

double mask_share(const std::vector<TrackedFace>& faces, int mask_class) {
  if (faces.empty()) return 0.0;
  int masked = 0;
  for (const auto& f : faces) masked += f.verdict == mask_class;
  return static_cast<double>(masked) / static_cast<double>(faces.size());
}

std::string face_label_text(const TrackedFace& f, const std::vector<std::string>& classes) {
  std::string name =
      f.verdict == kUncertain ? "uncertain" : shown_class_name(classes.at(static_cast<size_t>(f.verdict)));
  if (f.verdict == kUncertain && !f.smoothed.empty()) {  // "uncertain 75%" did not say 75 % of what
    const auto best = std::max_element(f.smoothed.begin(), f.smoothed.end()) - f.smoothed.begin();
    if (static_cast<size_t>(best) < classes.size())
      name += " " + shown_class_name(classes[static_cast<size_t>(best)]) + "?";
  }
  return fmt::format("{} {:.0f}%", name, f.confidence * 100);
}

void draw_faces(cv::Mat& frame, const std::vector<TrackedFace>& faces, const std::vector<std::string>& classes,
                bool show_track_ids) {
  // Up to 6x for photos of 8000 px (boxes were hairlines and labels unreadable at 1.2x).
  const double scale = std::clamp(frame.cols / 1280.0, 0.45, 6.0);
  const int thick = std::max(2, static_cast<int>(std::lround(3 * scale)));
  const double text_scale = 0.7 * scale + 0.15;
  const int text_thick = std::max(1, thick / 2);
  std::vector<std::string> texts;
  std::vector<cv::Rect> boxes;
  std::vector<cv::Size> sizes;
  for (const auto& f : faces) {
    const cv::Rect box(f.box);
    cv::rectangle(frame, box, verdict_colour(f.verdict, classes), thick, cv::LINE_AA);
    std::string text = face_label_text(f, classes);
    if (show_track_ids && f.track_id > 0) text = fmt::format("#{} ", f.track_id) + text;
    // The label sits on the box's outer edge.
    boxes.emplace_back(box.x - thick / 2, box.y - thick / 2, box.width + thick, box.height + thick);
    sizes.push_back(label_size(text, text_scale, text_thick));
    texts.push_back(std::move(text));
  }
  const auto at = place_labels(boxes, sizes, frame.size());
  for (size_t i = 0; i < faces.size(); ++i)
    draw_label(frame, texts[i], at[i], verdict_colour(faces[i].verdict, classes), text_scale, text_thick);
}

std::vector<cv::Rect> place_labels(const std::vector<cv::Rect>& boxes, const std::vector<cv::Size>& label_sizes,
                                   cv::Size frame) {
  std::vector<cv::Rect> placed;
  const auto inside = [&](cv::Rect r) {
    r.x = std::clamp(r.x, 0, std::max(0, frame.width - r.width));
    r.y = std::clamp(r.y, 0, std::max(0, frame.height - r.height));
    return r;
  };
  // What a label at r hides: other labels (weighted 4x: a verdict hidden) and other faces.
  const auto overlap = [&](const cv::Rect& r, size_t self) {
    int area = 0;
    for (const auto& p : placed) area += 4 * (p & r).area();
    for (size_t j = 0; j < boxes.size(); ++j)
      if (j != self) area += (boxes[j] & r).area();
    return area;
  };
  for (size_t i = 0; i < boxes.size(); ++i) {
    const cv::Rect& b = boxes[i];
    const cv::Size sz = label_sizes[i];
    // Nearest first: above, below, then a label's height further out, then shifted sideways
    // by half a label; the first that hides nothing, else the one that hides least.
    cv::Rect chosen;
    int least = -1;
    for (const int dx : {0, -sz.width / 2, sz.width / 2}) {
      for (int step = 0; step < 3 && least != 0; ++step) {
        for (const int y : {b.y - sz.height * (step + 1), b.y + b.height + sz.height * step}) {
          const cv::Rect r = inside({b.x + dx, y, sz.width, sz.height});
          const int o = overlap(r, i);
          if (least < 0 || o < least) chosen = r, least = o;
          if (least == 0) break;
        }
      }
      if (least == 0) break;
    }
    placed.push_back(chosen);
  }
  return placed;
}

void draw_status(cv::Mat& frame, const std::vector<TrackedFace>& faces, const std::vector<std::string>& classes,
                 const OverlayStatus& s) {
  const int mask_class = mask_class_index(classes);
  const double scale = std::clamp(frame.cols / 1280.0, 0.4, 1.0);
  std::vector<std::string> lines = {
      fmt::format("{:.1f} FPS", s.fps),
      fmt::format("detect {:.1f} ms  classify {:.1f} ms{}  track {:.2f} ms  draw {:.1f} ms", s.times.detect_ms,
                  s.times.classify_ms,
                  // The schedule classifies some faces per frame; say how many, so 0.0 ms is not a puzzle.
                  faces.empty() ? std::string()
                                : fmt::format(" ({} of {} faces)",
                                              std::count_if(faces.begin(), faces.end(),
                                                            [](const TrackedFace& f) { return f.classified; }),
                                              faces.size()),
                  s.times.track_ms, s.times.draw_ms),
      faces.empty() ? std::string("no faces")
                    : fmt::format("{} face{}, {:.0f}% with mask", faces.size(), faces.size() == 1 ? "" : "s",
                                  100 * mask_share(faces, mask_class))};
  std::string flags;
  if (s.recording) flags += "REC  ";
  if (s.paused) flags += "PAUSED  ";
  if (s.mirrored) flags += "MIRROR";
  if (!flags.empty()) lines.push_back(flags);
  if (!s.message.empty()) lines.push_back(s.message);
  const double ts = 0.55 * scale + 0.1;
  const int line_h = static_cast<int>(28 * scale + 8);
  int width = 0;
  for (const auto& l : lines) {
    int base = 0;
    width = std::max(width, cv::getTextSize(l, kFont, ts, 1, &base).width);
  }
  // Bottom-left panel (the top-left corner is where cameras burn in their own text).
  const cv::Rect panel(8, frame.rows - 8 - line_h * static_cast<int>(lines.size()) - 6, width + 16,
                       line_h * static_cast<int>(lines.size()) + 6);
  cv::Mat roi = frame(panel & cv::Rect(0, 0, frame.cols, frame.rows));
  cv::Mat dark(roi.size(), roi.type(), kBlack);
  cv::addWeighted(roi, 0.45, dark, 0.55, 0, roi);
  for (size_t i = 0; i < lines.size(); ++i) {
    const cv::Scalar c = lines[i].rfind("REC", 0) == 0 ? cv::Scalar(80, 80, 255) : kWhite;
    cv::putText(frame, lines[i], {panel.x + 8, panel.y + line_h * static_cast<int>(i + 1) - 4}, kFont, ts, c, 1,
                cv::LINE_AA);
  }
}

cv::Mat annotate_frame(const cv::Mat& frame, FrameResult& result, const std::vector<std::string>& classes,
                       OverlayStatus status) {
  Stopwatch sw;
  cv::Mat out = frame.clone();
  draw_zones(out, status.zones);
  draw_faces(out, result.faces, classes);
  status.times.detect_ms = result.times.detect_ms;
  status.times.classify_ms = result.times.classify_ms;
  status.times.track_ms = result.times.track_ms;
  draw_status(out, result.faces, classes, status);
  result.times.draw_ms = sw.ms();
  return out;
}

}  // namespace maskwatch
