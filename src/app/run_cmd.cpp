// `maskwatch run`: the real-time loop. Source -> faces -> mask verdicts -> overlay, events,
// recording, snapshots; a summary at the end.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <opencv2/imgproc.hpp>

#include "app/commands.h"
#include "app/run_keys.h"
#include "app/vision_options.h"
#include "eval/plots.h"
#include "media/image_io.h"
#include "util/error.h"
#include "util/files.h"
#include "util/json_io.h"
#include "util/locked_file.h"
#include "util/log_text.h"
#include "util/rate_meter.h"
#include "util/stop_signals.h"
#include "util/stopwatch.h"
#include "util/threads.h"
#include "vision/display.h"
#include "vision/events.h"
#include "vision/overlay.h"
#include "vision/recorder.h"
#include "vision/source.h"
#include "vision/track_ledger.h"
#include "vision/unmasked_rule.h"

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
  double reconnect_for_s = 0;
  double alert_after_s = 0;
};

struct Summary {
  int64_t frames = 0, face_frames = 0, masked_face_frames = 0, frames_with_faces = 0, verdict_changes = 0, alerts = 0;
  int64_t classified = 0;  // face detections that went through the classifier (the rest kept their track's result)
  StageTimes sum;
  double wall_s = 0, outage_s = 0;  // outage: waits for a live source that had stalled or dropped
  double processing_s() const { return std::max(0.0, wall_s - outage_s); }
  double fps() const { return processing_s() > 0 ? frames / processing_s() : 0.0; }
  // null / "n/a" when no face was seen: 0 would read as "nobody wore a mask".
  json share_with_mask() const {
    return face_frames ? json(static_cast<double>(masked_face_frames) / face_frames) : json(nullptr);
  }
  json to_json(int tracks, int64_t dropped) const {
    const double n = std::max<int64_t>(1, frames);
    return {{"frames", frames},
            {"dropped_frames", dropped},
            {"frames_with_faces", frames_with_faces},
            {"face_detections", face_frames},
            {"classified_faces", classified},
            {"tracks", tracks},
            {"verdict_changes", verdict_changes},
            {"alerts", alerts},
            {"share_with_mask", share_with_mask()},
            {"fps", fps()},
            {"mean_ms", sum.mean_json(n)},
            {"wall_seconds", wall_s},
            {"outage_seconds", outage_s}};
  }
};

void run(const RunOpts& o) {
  set_compute_threads(o.vision.threads);
  const bool display = !o.no_display;
  if (display && !std::getenv("DISPLAY") && !std::getenv("WAYLAND_DISPLAY"))
    throw Error(
        "no display available (DISPLAY is not set): use --no-display, with --record or --events to see results");
  if (display)
    if (const std::string why = Display::unavailable_reason(); !why.empty())
      throw Error(why + ": use --no-display, with --record or --events to see results");
  // Every output is checked before the first frame: a long run must not fail at its end.
  remember_url_secret(o.source);  // a camera password is never logged
  // A recording (or summary, or events appended) over the source video would destroy it.
  // So would one over the models it runs (a member of an ensemble, a sidecar, the face model).
  auto input_paths = o.vision.model_input_files();
  input_paths.emplace_back(o.source);
  // A folder of images: every image in it is an input (--events over one of them rewrote it
  // before it was read).
  std::error_code folder_ec;
  if (std::filesystem::is_directory(o.source, folder_ec))
    for (std::filesystem::directory_iterator it(o.source, folder_ec), end; !folder_ec && it != end;
         it.increment(folder_ec))
      if (is_image_file(it->path())) input_paths.push_back(it->path());
  const InputFiles inputs(input_paths);
  refuse_same_output({{o.record, "recording"}, {o.events, "events file"}, {o.json_out, "summary file"}});
  if (!o.json_out.empty()) {
    inputs.refuse_overwriting(o.json_out, "summary file");
    check_output_path(o.json_out, "summary file");
  }
  if (!o.record.empty()) {
    inputs.refuse_overwriting(o.record, "recording");
    check_output_path(o.record, "recording");
  }
  if (!o.events.empty()) inputs.refuse_overwriting(o.events, "events file");
  g_quit = false;
  StopSignals stop_signals([](int) { g_quit = true; });
  MaskClassifier classifier(o.vision.model, {}, o.vision.engine());
  classifier.warn_if_crops_differ(true, o.vision.model);
  std::error_code ec;  // (the summary's; worked out now, while the working folder surely exists)
  const auto absolute_model = std::filesystem::absolute(o.vision.model, ec);
  const std::string model_file = ec ? o.vision.model : absolute_model.lexically_normal().string();
  FaceDetector detector(o.vision.detector_options());
  Pipeline pipeline(classifier, detector, o.vision.pipeline);
  SourceOptions so;
  so.width = o.width;
  so.height = o.height;
  so.reconnect_for_s = o.reconnect_for_s;
  so.cancel = &g_quit;
  auto source = open_source(o.source, so);
  const auto& classes = classifier.classes();
  const int mask_class = mask_class_index(classes);
  spdlog::info("source: {}; faces: {}; model: {} ({}, {})", source->description(), detector.description(),
               o.vision.model, fmt::join(classes, "/"), inference_engine_name(classifier.engine()));
  // Opened only once the models and the source have loaded, and emptied at its first line: a
  // run that cannot start (no model, no source, no frame) leaves an earlier events file as it was.
  std::unique_ptr<LockedLineFile> events;
  if (!o.events.empty()) events = std::make_unique<LockedLineFile>(o.events, "events file");

  std::unique_ptr<VideoRecorder> recorder;
  std::vector<std::string> recordings;  // every file written, for the summary
  std::string recording_failure;        // a recording that could not be written
  const double record_fps = source->live() ? 15.0 : source->fps();
  if (!o.record.empty()) recorder = std::make_unique<VideoRecorder>(o.record, record_fps);
  std::unique_ptr<Display> window;
  if (display) window = std::make_unique<Display>("maskwatch");

  Summary sum;
  OverlayStatus status;
  status.mirrored = o.mirror;
  double message_until = 0;
  // The face lifecycle `serve` reports, on source time: events and the alarm come from it.
  LedgerOptions ledger_options;
  ledger_options.max_missed_s = o.vision.pipeline.tracker.max_missed_s;
  ledger_options.mask_class = mask_class;
  TrackLedger ledger(ledger_options);
  std::unique_ptr<UnmaskedRule> alarm;
  if (o.alert_after_s > 0) alarm = std::make_unique<UnmaskedRule>(o.alert_after_s, mask_class);
  const auto log_event = [&](nlohmann::json line, int64_t frame) {
    line["frame"] = frame;
    events->write_line(line.dump());
  };
  const auto record_end = [&](const TrackEnded& t, int64_t frame) {
    if (events) log_event(ended_json(t, classes), frame);
    if (alarm) alarm->on_end("", t.track_id);
  };
  Stopwatch wall;
  double last_draw_ms = 0;
  RateMeter frame_rate(std::chrono::seconds(2));  // frames through the loop, shown on the overlay
  cv::Mat annotated;
  SourceFrame f;
  while (!g_quit && (o.max_frames == 0 || sum.frames < o.max_frames)) {
    if (!status.paused) {
      Stopwatch wait;
      const bool got = source->read(f);
      // A live source that kept us waiting much longer than a frame had stalled or dropped.
      if (source->live() && wait.ms() > 1000) sum.outage_s += wait.ms() / 1000;
      if (!got) break;
      if (status.mirrored) cv::flip(f.image, f.image, 1);
      auto r = pipeline.process(f.image, f.index, f.time_s);
      const auto done = RateMeter::Clock::now();
      frame_rate.tick(done);
      status.fps = frame_rate.rate(done);
      status.times.draw_ms = last_draw_ms;  // this frame's drawing is not done yet
      status.recording = recorder != nullptr;
      if (wall.ms() / 1000 > message_until) status.message.clear();
      // Drawing is only for a window or a recording; headless runs without --record skip it.
      if (display || recorder) {
        annotated = annotate_frame(f.image, r, classes, status);
        last_draw_ms = r.times.draw_ms;
      }
      if (recorder) {
        try {
          recorder->write(annotated);
        } catch (const std::exception& e) {
          // A full disk ends the recording, not the run; the run still fails at its end (below).
          spdlog::error("{}; the run goes on without recording", e.what());
          recording_failure = e.what();
          status.message = "recording stopped: " + recording_failure;
          message_until = wall.ms() / 1000 + 5;
          recorder.reset();
        }
      }
      const LedgerUpdate news = ledger.observe(r, f.image, r.time_s);
      if (events) events->write_line(frame_event(r, classes, status.fps).dump());
      for (const auto& v : news.verdicts) {
        if (events) log_event(verdict_json(v, classes), r.frame);
        if (alarm) alarm->on_verdict("", v);
      }
      for (const auto& t : news.ended) record_end(t, r.frame);
      ++sum.frames;
      sum.face_frames += static_cast<int64_t>(r.faces.size());
      sum.frames_with_faces += !r.faces.empty();
      sum.classified += r.classified;
      for (const auto& face : r.faces) sum.masked_face_frames += face.verdict == mask_class;
      // As the events file counts them (its new and update lines): the ledger's, not the
      // pipeline's own list, which disagreed on photo folders (13 against 15).
      sum.verdict_changes += static_cast<int64_t>(news.verdicts.size());
      sum.sum += r.times;
      if (alarm) {
        while (const auto due = alarm->next_due(r.time_s)) {
          ++sum.alerts;
          std::fputc('\a', stderr);  // the terminal bell: the sound a console has
          std::fflush(stderr);
          spdlog::warn("alert: face #{} without a mask for {:.1f} s (frame {})", due->track_id, o.alert_after_s,
                       f.index);
          status.message = fmt::format("ALERT: face #{} without a mask", due->track_id);
          message_until = wall.ms() / 1000 + 3;
        }
      }
    }
    if (!window) continue;
    window->show(annotated);
    const int key = window->wait_key(status.paused ? 50 : 1) & 0xFF;
    if (key == 'q' || key == 27) break;
    if (key == ' ') status.paused = !status.paused;
    if (key == 'm') status.mirrored = !status.mirrored;
    if (key == 'c') {
      status.message = snapshot_key(o.snapshot_dir, timestamp(), f.index, annotated);
      message_until = wall.ms() / 1000 + 2;
    }
    if (key == 'v') {
      auto result = record_key(recorder, o.snapshot_dir, timestamp(), record_fps, recordings);
      if (!result.lost.empty()) recording_failure = result.lost;  // fails the run at its end, as below
      status.message = std::move(result.message);
      message_until = wall.ms() / 1000 + 2;
    }
  }
  sum.wall_s = wall.ms() / 1000;
  for (const auto& t : ledger.end_all()) record_end(t, f.index);  // the faces still in view end with the run
  if (recorder) {
    try {
      finish_recording(recorder, recordings);  // without a frame (nothing could be read), no file to announce
    } catch (const std::exception& e) {
      recording_failure = e.what();  // the summary is still written
    }
  }
  window.reset();
  json s = sum.to_json(pipeline.tracks_started(), source->dropped());
  // Which models gave these numbers: a summary read later must not depend on the defaults then.
  s["model"] = model_file;
  s["face_detector"] = detector.description();
  const double n = static_cast<double>(std::max<int64_t>(1, sum.frames));
  fmt::print("frames {} ({} dropped), faces seen {} in {} frames ({} classified), tracks {}, verdict changes {}{}\n",
             sum.frames, source->dropped(), sum.face_frames, sum.frames_with_faces, sum.classified,
             pipeline.tracks_started(), sum.verdict_changes, alarm ? fmt::format(", alerts {}", sum.alerts) : "");
  if (sum.frames > 0)  // (no frame: the error below says so; "0.0 FPS" said nothing)
    fmt::print(
        "with mask: {}; {:.1f} FPS (detect {:.1f} ms, classify {:.1f} ms, track {:.2f} ms, "
        "draw {:.1f} ms per frame)\n",
        sum.face_frames ? fmt::format("{:.1f}% of face detections", 100 * sum.share_with_mask().get<double>())
                        : std::string("n/a (no face)"),
        sum.fps(), sum.sum.detect_ms / n, sum.sum.classify_ms / n, sum.sum.track_ms / n, sum.sum.draw_ms / n);
  if (sum.outage_s > 0) fmt::print("waited {:.1f} s for the source (not counted in FPS)\n", sum.outage_s);
  for (const auto& file : recordings) fmt::print("recording: {}\n", file);
  // The summary is written either way once a frame was read; losing the source for good is still
  // a failure. A run that never got a frame (none came, or it was stopped first) did not start:
  // an earlier summary stays, as the earlier events do (emptied at the first line).
  if (!o.json_out.empty() && sum.frames > 0) write_json_atomic(o.json_out, s);
  if (!o.json_out.empty() && sum.frames == 0 && g_quit)
    spdlog::warn("stopped before the first frame: {} was not written", o.json_out);
  if (!g_quit && !source->failure().empty()) throw Error(source->failure());
  if (!recording_failure.empty()) throw Error("recording failed: " + recording_failure);
  // A source that gave nothing (a folder of undecodable images) is a failure, not an empty success.
  if (!g_quit && sum.frames == 0) throw Error(fmt::format("no frame could be read from {}", o.source));
}

}  // namespace

void add_run_command(CLI::App& root) {
  auto o = std::make_shared<RunOpts>();
  auto* cmd = root.add_subcommand(
      "run",
      "Real-time mask detection from a webcam, video file, stream or image folder. Keys: q/Esc quit, "
      "c snapshot, v start/stop recording, m mirror, space pause");
  o->vision.add_to(cmd);
  cmd->add_option("--source", o->source,
                  "0 (webcam index), /dev/videoN, a video file, rtsp/http URL, or an image folder (played as "
                  "frames of one video, 1 s apart in media time, faces tracked across them: for separate photos "
                  "use detect)")
      ->capture_default_str();
  cmd->add_option("--face-keep-threshold", o->vision.pipeline.tracker.keep_score,
                  "Face score a face already followed needs to stay shown; a new face needs --face-threshold (1: off; "
                  "0.4 for dim rooms) (serve: tracker.keep_score)")
      ->capture_default_str()
      ->check(in_range(0.05, 1.0));
  cmd->add_flag("--no-display", o->no_display, "Run without a window (servers, CI)");
  cmd->add_option("--record", o->record, "Write the annotated video here (.mp4, .m4v or .mov: MPEG-4 Part 2, cheap to encode beside the live loop; .avi: MJPEG)");
  cmd->add_option("--events", o->events,
                  "Write JSON lines: one per frame, and each face track's first verdict (new), changes (update) and "
                  "end, as serve publishes them");
  cmd->add_option("--json", o->json_out, "Write the end-of-run summary as JSON");
  cmd->add_flag("--mirror", o->mirror, "Mirror the image (selfie view)");
  cmd->add_option("--max-frames", o->max_frames, "Stop after N frames (0 = until the source ends)")
      ->check(in_range(int64_t{0}, int64_t{1} << 40));
  cmd->add_option("--reconnect-for", o->reconnect_for_s,
                  "Streams and cameras: keep trying to reconnect for this many seconds after the last frame, then "
                  "exit 1 (0 = forever, right for a live camera). A source that cannot be opened at the start is an "
                  "error at once")
      ->capture_default_str()
      ->check(in_range(0.0, 1e7));
  cmd->add_option("--alert-after", o->alert_after_s,
                  "Ring the terminal bell and log an alert when a face stays without a mask this many seconds "
                  "(once per episode; 0 = off)")
      ->capture_default_str()
      ->check(in_range(0.0, 86400.0));
  add_setting(cmd, face_stage::kReclassifyAfter, o->vision.pipeline.schedule.refresh_s);
  cmd->add_option("--width", o->width, "Camera width asked for (webcams; files and streams keep their own size)")
      ->capture_default_str()
      ->check(in_range(16, 7680));
  cmd->add_option("--height", o->height, "Camera height asked for (webcams; files and streams keep their own size)")
      ->capture_default_str()
      ->check(in_range(16, 4320));
  cmd->add_option("--snapshot-dir", o->snapshot_dir, "Where c and v save snapshots and recordings")
      ->capture_default_str();
  cmd->callback([o] { run(*o); });
}

}  // namespace maskwatch::app
