// End-to-end cost of the real-time path per 640x480 frame: decode (optional), detect,
// classify, track, draw. Test frames come from the sample webcam clip: a 4:3 crop scaled to
// 640x480 (one face) or a 2x2 mosaic of four clip frames (four faces).
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

namespace maskwatch {

// `faces` is 1 or 4.
std::vector<cv::Mat> pipeline_bench_frames(const std::filesystem::path& clip, int faces);

struct PipelineBenchOptions {
  std::filesystem::path model, clip;
  int faces = 1;
  bool decode = false;  // frames go through an .mp4 file and FFmpeg decoding
  int frames = 150;
  int threads = 0;
};

// Runs in the calling process; returns frame and stage times, faces found, peak RSS.
nlohmann::json bench_pipeline(const PipelineBenchOptions& options);

}  // namespace maskwatch
