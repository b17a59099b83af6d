// End-to-end cost of the real-time path per 640x480 frame: decode (optional), detect,
// classify, track, draw. Test frames come from the sample webcam clip: a 4:3 crop scaled to
// 640x480 (one face) or a 2x2 mosaic of four clip frames (four faces).
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "vision/face_detector.h"

namespace maskwatch {

// `faces` is 1 or 4.
std::vector<cv::Mat> pipeline_bench_frames(const std::filesystem::path& clip, int faces);

struct PipelineBenchOptions {
  std::filesystem::path model, clip;
  int faces = 1;
  bool decode = false;  // frames go through an .mp4 file and FFmpeg decoding
  int frames = 150;
  int threads = 0;
  double reclassify_after_s = 0.2;  // the classifier schedule (0: every face, every frame)
};

// One case's result. Frames are timed as if they came from a 30 fps camera (the schedule
// works in seconds); stage times are per-frame means.
struct PipelineBenchResult {
  int faces = 0;
  bool decode = false;
  double reclassify_after_s = 0;
  int frames = 0, threads = 0;
  double faces_found_per_frame = 0, classified_per_frame = 0;
  double mean_frame_ms = 0, median_frame_ms = 0, p95_frame_ms = 0;
  double decode_ms = 0, detect_ms = 0, classify_ms = 0, track_ms = 0, draw_ms = 0;
  double peak_rss_mib = 0;
  // The share of an ensemble's classified faces that ran every member; -1 for one model.
  double all_members_share = -1;
  double fps() const { return mean_frame_ms > 0 ? 1000.0 / mean_frame_ms : 0.0; }
};
// The JSON `bench-pipeline` prints and `bench` reads: the field names, nothing else.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(PipelineBenchResult, faces, decode, reclassify_after_s, frames, threads,
                                                faces_found_per_frame, classified_per_frame, mean_frame_ms,
                                                median_frame_ms, p95_frame_ms, decode_ms, detect_ms, classify_ms,
                                                track_ms, draw_ms, peak_rss_mib, all_members_share)

// Runs in the calling process.
PipelineBenchResult bench_pipeline(const PipelineBenchOptions& options);

// Face detection alone on the 640x480 test frames (`faces` 1 or 4): median ms per frame and
// the mean number of faces found.
struct FaceDetectBenchResult {
  double median_ms = 0, faces_per_frame = 0;
  int iterations = 0;
};
FaceDetectBenchResult bench_face_detector(const FaceDetectorOptions& detector, const std::filesystem::path& clip,
                                          int faces, double seconds, int threads);

}  // namespace maskwatch
