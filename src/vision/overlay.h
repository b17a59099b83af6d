// Draws what the user sees: a box per face coloured by verdict (green = a "mask"-like class,
// red = "no mask", purple = worn incorrectly, worded "mask below nose", amber = uncertain) with
// label and confidence, and a status panel with FPS, per-stage timings, face count, share with
// a mask, and REC / PAUSED / MIRROR flags.
#pragma once
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "vision/pipeline.h"
#include "vision/zones.h"

namespace maskwatch {

struct OverlayStatus {
  double fps = 0;
  StageTimes times;
  bool recording = false, paused = false, mirrored = false;
  std::string message;  // transient, e.g. "snapshot saved: ..."
  std::vector<Zone> zones;  // outlined under the faces (serve: the camera's zones)
};

// Index of the class that means "wearing a mask": the first class whose name contains
// "with" but not "without" (else 0). Everything else counts as no mask.
int mask_class_index(const std::vector<std::string>& classes);

// Box colour of a verdict: green for the mask class, red for "without", purple for a mask
// worn incorrectly, amber for uncertain, a palette colour for any other class.
cv::Scalar verdict_colour(int verdict, const std::vector<std::string>& classes);

// Share of faces whose verdict is the mask class (uncertain faces count as not masked).
double mask_share(const std::vector<TrackedFace>& faces, int mask_class);

// A copy of the frame with faces and the status panel drawn; sets result.times.draw_ms.
cv::Mat annotate_frame(const cv::Mat& frame, FrameResult& result, const std::vector<std::string>& classes,
                       OverlayStatus status);

// "without_mask 97%", or "uncertain with_mask? 57%" (the class it leans to, and how much).
std::string face_label_text(const TrackedFace& face, const std::vector<std::string>& classes);
void draw_faces(cv::Mat& frame, const std::vector<TrackedFace>& faces, const std::vector<std::string>& classes,
                bool show_track_ids = true);
// Where each face's label goes (its box, the label's size): on the box's top edge, or, where
// that would cover a label placed before or another face, below the box, else further out or
// shifted sideways, wherever it hides least; inside the frame. Labels of faces side by side
// overlapped and hid each other's verdicts.
std::vector<cv::Rect> place_labels(const std::vector<cv::Rect>& boxes, const std::vector<cv::Size>& label_sizes,
                                   cv::Size frame);
void draw_status(cv::Mat& frame, const std::vector<TrackedFace>& faces, const std::vector<std::string>& classes,
                 const OverlayStatus& status);

}  // namespace maskwatch
