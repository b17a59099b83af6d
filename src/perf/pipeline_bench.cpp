#include "perf/pipeline_bench.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <opencv2/imgproc.hpp>

#include "media/video_reader.h"
#include "perf/timing.h"
#include "util/error.h"
#include "util/stopwatch.h"
#include "util/threads.h"
#include "vision/overlay.h"
#include "vision/pipeline.h"
#include "vision/recorder.h"
#include "vision/source.h"

namespace maskwatch {

std::vector<cv::Mat> pipeline_bench_frames(const std::filesystem::path& clip, int faces) {
  VideoReader cap;
  if (!cap.open(clip.string())) throw Error("cannot open " + clip.string() + ": " + cap.error());
  auto four_by_three = [](const cv::Mat& f) {
    const int w = std::min(f.cols, f.rows * 4 / 3);
    cv::Mat out;
    cv::resize(f(cv::Rect((f.cols - w) / 2, 0, w, f.rows)), out, cv::Size(640, 480), 0, 0, cv::INTER_AREA);
    return out;
  };
  // Every 3rd clip frame, already at 640x480 (the full-size clip is not kept in memory).
  std::vector<cv::Mat> all;
  int index = 0;
  for (cv::Mat f; cap.read(f); ++index)
    if (index % 3 == 0) all.push_back(four_by_three(f));
  if (all.size() < 24) throw Error("the sample clip is too short");
  std::vector<cv::Mat> out;
  for (size_t i = 0; i < all.size(); ++i) {
    if (faces == 1) {
      out.push_back(all[i]);
      continue;
    }
    cv::Mat mosaic(480, 640, CV_8UC3);
    const size_t q = all.size() / 4;
    const size_t picks[4] = {i, (i + q) % all.size(), (i + 2 * q) % all.size(), (i + 3 * q) % all.size()};
    for (int k = 0; k < 4; ++k) {
      cv::Mat tile;
      cv::resize(all[picks[k]], tile, cv::Size(320, 240), 0, 0, cv::INTER_AREA);
      tile.copyTo(mosaic(cv::Rect((k % 2) * 320, (k / 2) * 240, 320, 240)));
    }
    out.push_back(mosaic);
  }
  return out;
}

PipelineBenchResult bench_pipeline(const PipelineBenchOptions& o) {
  const int threads = resolve_threads(o.threads);
  set_compute_threads(threads);
  const auto frames = pipeline_bench_frames(o.clip, o.faces);
  std::unique_ptr<FrameSource> source;
  std::filesystem::path video;
  if (o.decode) {
    video = std::filesystem::temp_directory_path() / fmt::format("maskwatch-bench-{}-{}.mp4", getpid(), o.faces);
    VideoRecorder rec(video, 15);
    for (int i = 0; i < o.frames; ++i) rec.write(frames[static_cast<size_t>(i) % frames.size()]);
    rec.close();
    source = open_source(video.string());
  }
  // Peak RSS of the pipeline itself: reset the high-water mark after the test frames exist.
  if (FILE* f = std::fopen("/proc/self/clear_refs", "w")) {
    std::fputs("5", f);
    std::fclose(f);
  }
  MaskClassifier classifier(o.model);
  FaceDetector detector;
  PipelineOptions po;
  po.schedule.refresh_s = o.reclassify_after_s;
  Pipeline pipeline(classifier, detector, po);
  const auto& classes = classifier.classes();
  std::vector<double> totals;
  StageTimes sum;
  double decode_sum = 0;
  int64_t faces_found = 0, classified = 0;
  const int warmup = 5;
  MaskClassifier::CascadeStats warmup_stats;  // the ensemble's counts after the warm-up frames
  for (int i = 0; i < o.frames + warmup; ++i) {
    Stopwatch sw;
    cv::Mat frame;
    const double t = i / 30.0;
    if (source) {
      SourceFrame f;
      if (!source->read(f)) source = open_source(video.string()), source->read(f);
      frame = f.image;
    } else {
      frame = frames[static_cast<size_t>(i) % frames.size()];
    }
    const double decode_ms = sw.ms();
    auto r = pipeline.process(frame, i, t);
    OverlayStatus status;
    const cv::Mat annotated = annotate_frame(frame, r, classes, status);
    if (i < warmup) {
      warmup_stats = classifier.cascade_stats();
      continue;
    }
    totals.push_back(sw.ms());
    decode_sum += decode_ms;
    sum += r.times;
    faces_found += static_cast<int64_t>(r.faces.size());
    classified += r.classified;
  }
  if (!video.empty()) std::filesystem::remove(video);
  std::sort(totals.begin(), totals.end());
  const double n = static_cast<double>(totals.size());
  PipelineBenchResult r;
  r.faces = o.faces;
  r.decode = o.decode;
  r.reclassify_after_s = o.reclassify_after_s;
  r.frames = static_cast<int>(totals.size());
  r.threads = cv::getNumThreads();  // what ran: set_compute_threads gives at most one per core
  r.faces_found_per_frame = faces_found / n;
  r.classified_per_frame = classified / n;
  for (double v : totals) r.mean_frame_ms += v / n;
  r.median_frame_ms = totals[totals.size() / 2];
  r.p95_frame_ms = totals[std::min(totals.size() - 1, static_cast<size_t>(0.95 * n))];
  r.decode_ms = decode_sum / n;
  r.detect_ms = sum.detect_ms / n;
  r.classify_ms = sum.classify_ms / n;
  r.track_ms = sum.track_ms / n;
  r.draw_ms = sum.draw_ms / n;
  r.peak_rss_mib = peak_rss_mib();
  if (const auto& c = classifier.cascade_stats(); classifier.model_count() > 1 && c.faces > warmup_stats.faces)
    r.all_members_share = static_cast<double>(c.all_members - warmup_stats.all_members) /
                          static_cast<double>(c.faces - warmup_stats.faces);
  return r;
}

FaceDetectBenchResult bench_face_detector(const FaceDetectorOptions& o, const std::filesystem::path& clip, int faces,
                                          double seconds, int threads) {
  set_compute_threads(resolve_threads(threads));
  const auto frames = pipeline_bench_frames(clip, faces);
  FaceDetector detector(o);
  size_t next = 0, found = 0, runs = 0;
  const auto t = time_it(
      [&] {
        found += detector.detect(frames[next++ % frames.size()]).size();
        ++runs;
      },
      5, 20, seconds);
  return {t.median_ms, runs ? static_cast<double>(found) / static_cast<double>(runs) : 0.0, t.iterations};
}

}  // namespace maskwatch
