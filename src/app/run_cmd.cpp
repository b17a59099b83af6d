// `maskwatch run`: the real-time loop. Source -> faces -> mask verdicts -> overlay, events,
// recording, snapshots; a summary at the end.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <csignal>
#include <ctime>
#include <fstream>
#include <opencv2/highgui.hpp>
#include <opencv2/imgproc.hpp>

#include "app/commands.h"
#include "util/threads.h"
#include "app/vision_options.h"
#include "util/stopwatch.h"
#include "eval/plots.h"
#include "util/error.h"
#include "util/json_io.h"
#include "vision/events.h"
#include "vision/overlay.h"
#include "vision/recorder.h"
#include "vision/source.h"

namespace maskwatch::app {
namespace {

std::atomic<bool> g_quit{false};

std::string timestamp() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", std::localtime(&t));
  return buf;
}

struct RunOpts {
  VisionOptions vision;
  std::string source = "0", record, events, json_out, snapshot_dir = ".";
  bool no_display = false, mirror = false;
  int64_t max_frames = 0;
  int width = 640, height = 480;
};

struct Summary {
  int64_t frames = 0, face_frames = 0, masked_face_frames = 0, frames_with_faces = 0, verdict_changes = 0;
  StageTimes sum;
  double wall_s = 0;
  json to_json(int tracks, int64_t dropped) const {
    const double n = std::max<int64_t>(1, frames);
    return {{"frames", frames},
            {"dropped_frames", dropped},
            {"frames_with_faces", frames_with_faces},
            {"face_detections", face_frames},
            {"tracks", tracks},
            {"verdict_changes", verdict_changes},
            {"share_with_mask", face_frames ? static_cast<double>(masked_face_frames) / face_frames : 0.0},
            {"fps", wall_s > 0 ? frames / wall_s : 0.0},
            {"mean_ms", {{"detect", sum.detect_ms / n}, {"classify", sum.classify_ms / n}, {"track", sum.track_ms / n},
                         {"draw", sum.draw_ms / n}}},
            {"wall_seconds", wall_s}};
  }
};

void run(const RunOpts& o) {
  set_compute_threads(o.vision.threads);
  const bool display = !o.no_display;
  if (display && !std::getenv("DISPLAY") && !std::getenv("WAYLAND_DISPLAY"))
    throw Error("no display available (DISPLAY is not set): use --no-display, with --record or --events to see results");
  MaskClassifier classifier(o.vision.model);
  FaceDetector detector(o.vision.detector_options());
  Pipeline pipeline(classifier, detector, o.vision.pipeline);
  SourceOptions so;
  so.width = o.width;
  so.height = o.height;
  auto source = open_source(o.source, so);
  const auto& classes = classifier.classes();
  const int mask_class = mask_class_index(classes);
  spdlog::info("source: {}; faces: {}; model: {} ({})", source->description(), detector.description(), o.vision.model,
               fmt::join(classes, "/"));

  std::unique_ptr<VideoRecorder> recorder;
  std::vector<std::string> recordings;  // every file written, for the summary
  const double record_fps = source->live() ? 15.0 : source->fps();
  if (!o.record.empty()) recorder = std::make_unique<VideoRecorder>(o.record, record_fps);
  std::ofstream events;
  if (!o.events.empty()) {
    events.open(o.events, std::ios::trunc);
    if (!events) throw Error("cannot write events file " + o.events);
  }
  if (display) cv::namedWindow("maskwatch", cv::WINDOW_AUTOSIZE);

  g_quit = false;
  std::signal(SIGINT, [](int) { g_quit = true; });
  Summary sum;
  OverlayStatus status;
  status.mirrored = o.mirror;
  double message_until = 0;
  Stopwatch wall, frame_clock;
  double fps_ema = 0, last_draw_ms = 0;
  cv::Mat annotated;
  SourceFrame f;
  while (!g_quit && (o.max_frames == 0 || sum.frames < o.max_frames)) {
    if (!status.paused) {
      if (!source->read(f)) break;
      if (status.mirrored) cv::flip(f.image, f.image, 1);
      auto r = pipeline.process(f.image, f.index, f.time_s);
      const double dt = frame_clock.ms() / 1000;
      frame_clock.reset();
      if (sum.frames > 0) fps_ema = fps_ema > 0 ? 0.9 * fps_ema + 0.1 / std::max(dt, 1e-6) : 1.0 / std::max(dt, 1e-6);
      status.fps = fps_ema;
      status.times.draw_ms = last_draw_ms;  // this frame's drawing is not done yet
      status.recording = recorder != nullptr;
      if (wall.ms() / 1000 > message_until) status.message.clear();
      // Drawing is only for a window or a recording; headless runs without --record skip it.
      if (display || recorder) {
        annotated = annotate_frame(f.image, r, classes, status);
        last_draw_ms = r.times.draw_ms;
      }
      if (recorder) recorder->write(annotated);
      if (events.is_open()) {
        events << frame_event(r, classes, fps_ema).dump() << '\n';
        for (const auto& c : r.changes) events << verdict_event(r, c, classes).dump() << '\n';
        events.flush();
      }
      ++sum.frames;
      sum.face_frames += static_cast<int64_t>(r.faces.size());
      sum.frames_with_faces += !r.faces.empty();
      for (const auto& face : r.faces) sum.masked_face_frames += face.verdict == mask_class;
      sum.verdict_changes += static_cast<int64_t>(r.changes.size());
      sum.sum.detect_ms += r.times.detect_ms;
      sum.sum.classify_ms += r.times.classify_ms;
      sum.sum.track_ms += r.times.track_ms;
      sum.sum.draw_ms += r.times.draw_ms;
    }
    if (!display) continue;
    cv::imshow("maskwatch", annotated);
    const int key = cv::waitKey(status.paused ? 50 : 1) & 0xFF;
    if (key == 'q' || key == 27) break;
    if (key == ' ') status.paused = !status.paused;
    if (key == 'm') status.mirrored = !status.mirrored;
    if (key == 'c' && !annotated.empty()) {
      const auto path = std::filesystem::path(o.snapshot_dir) / fmt::format("maskwatch-{}-{}.png", timestamp(), f.index);
      save_png(path, annotated);
      status.message = "snapshot " + path.string();
      message_until = wall.ms() / 1000 + 2;
    }
    if (key == 'v') {
      if (recorder) {
        recorder->close();
        status.message = fmt::format("saved {} ({} frames)", recorder->path().string(), recorder->frames());
        recordings.push_back(recorder->path().string());
        recorder.reset();
      } else {
        const auto path = std::filesystem::path(o.snapshot_dir) / fmt::format("maskwatch-{}.mp4", timestamp());
        recorder = std::make_unique<VideoRecorder>(path, record_fps);
        status.message = "recording " + path.string();
      }
      message_until = wall.ms() / 1000 + 2;
    }
  }
  std::signal(SIGINT, SIG_DFL);
  sum.wall_s = wall.ms() / 1000;
  if (recorder) {
    recorder->close();
    recordings.push_back(recorder->path().string());
  }
  if (display) cv::destroyAllWindows();
  const json s = sum.to_json(pipeline.tracks_started(), source->dropped());
  fmt::print("frames {} ({} dropped), faces seen {} in {} frames, tracks {}, verdict changes {}\n", sum.frames,
             source->dropped(), sum.face_frames, sum.frames_with_faces, s["tracks"].get<int>(), sum.verdict_changes);
  fmt::print("with mask: {:.1f}% of face detections; {:.1f} FPS (detect {:.1f} ms, classify {:.1f} ms, track {:.2f} ms, "
             "draw {:.1f} ms per frame)\n",
             100 * s["share_with_mask"].get<double>(), s["fps"].get<double>(), s["mean_ms"]["detect"].get<double>(),
             s["mean_ms"]["classify"].get<double>(), s["mean_ms"]["track"].get<double>(),
             s["mean_ms"]["draw"].get<double>());
  for (const auto& file : recordings) fmt::print("recording: {}\n", file);
  if (!o.json_out.empty()) write_json_atomic(o.json_out, s);
}

}  // namespace

void add_run_command(CLI::App& root) {
  auto o = std::make_shared<RunOpts>();
  auto* cmd = root.add_subcommand(
      "run", "Real-time mask detection from a webcam, video file, stream or image folder. Keys: q/Esc quit, "
             "c snapshot, v start/stop recording, m mirror, space pause");
  o->vision.add_to(cmd);
  cmd->add_option("--source", o->source, "0 (webcam index), /dev/videoN, a video file, rtsp/http URL, or an image folder")
      ->capture_default_str();
  cmd->add_flag("--no-display", o->no_display, "Run without a window (servers, CI)");
  cmd->add_option("--record", o->record, "Write the annotated video here (.mp4 or .avi)");
  cmd->add_option("--events", o->events, "Write JSON lines: one per frame, one per verdict change");
  cmd->add_option("--json", o->json_out, "Write the end-of-run summary as JSON");
  cmd->add_flag("--mirror", o->mirror, "Mirror the image (selfie view)");
  cmd->add_option("--max-frames", o->max_frames, "Stop after N frames (0 = until the source ends)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--width", o->width, "Camera width")->capture_default_str();
  cmd->add_option("--height", o->height, "Camera height")->capture_default_str();
  cmd->add_option("--snapshot-dir", o->snapshot_dir, "Where c and v save snapshots and recordings")->capture_default_str();
  cmd->callback([o] { run(*o); });
}

}  // namespace maskwatch::app
