// `maskwatch bench`: measures and prints the speed tables that README.md quotes.
#include <fmt/format.h>

#include <map>

#include <unistd.h>

#include <thread>

#include "app/train/commands.h"
#include "nn/classifier_bench.h"
#include "perf/fma_peak.h"
#include "perf/pipeline_bench.h"
#include "perf/timing.h"
#include "train/trainer.h"
#include "util/error.h"
#include "util/files.h"
#include "util/json_io.h"
#include "util/paths.h"
#include "util/subprocess.h"
#include "util/threads.h"
#include "vision/classify_schedule.h"
#include "vision/face_detector.h"
#include "vision/mask_classifier.h"

namespace maskwatch::app {
namespace {

struct BenchOpts {
  std::string json_out;
  bool train = false, serve = false, classifier = true, pipeline = true;
  std::string model = default_classifier_path().string();
  std::string clip =
      (default_seed_data_path().parent_path().parent_path() / "samples" / "video" / "webcam-mask-on-off.mp4").string();
  std::vector<std::string> train_data;  // empty: the default recipe's (use_default_training_data)
  double seconds = 1.0;
  std::vector<int> sizes = {224, 160, 128};
  std::vector<int> batches = {1, 4};
  std::vector<int> threads;
};

json classifier_section(const BenchOpts& o) {
  std::vector<std::vector<std::string>> rows;
  json results = json::array();
  std::map<std::pair<int, int>, double> best_xnn_ms;  // (size, threads) -> XNNPACK ms/face at batch 1
  for (int threads : o.threads)
    for (int size : o.sizes)
      for (int batch : o.batches) {
        std::map<Engine, double> ms;
        for (Engine e : {Engine::OpenCvDnn, Engine::Xnnpack, Engine::LibTorchEager}) {
          const auto r = json::parse(run_isolated([&] {
            auto c = make_classifier_case(e, size, batch, threads);
            const auto t = time_it(c.run, 3, 10, o.seconds);
            return json{{"engine", engine_name(e)},
                        {"input", size},
                        {"batch", batch},
                        {"threads", threads},
                        {"median_ms_per_batch", t.median_ms},
                        {"ms_per_face", t.median_ms / batch},
                        {"iterations", t.iterations},
                        {"blas", loaded_blas()}}
                .dump();
          }));
          ms[e] = r["ms_per_face"].get<double>();
          results.push_back(r);
        }
        const double cv_ms = ms[Engine::OpenCvDnn], xnn_ms = ms[Engine::Xnnpack], torch_ms = ms[Engine::LibTorchEager];
        if (batch == 1) best_xnn_ms[{size, threads}] = xnn_ms;
        rows.push_back({std::to_string(size), std::to_string(batch), std::to_string(threads),
                        fmt::format("{:.2f}", cv_ms), fmt::format("{:.2f}", xnn_ms), fmt::format("{:.2f}", torch_ms),
                        fmt::format("{:.2f}x", cv_ms / xnn_ms), fmt::format("{:.1f}x", torch_ms / cv_ms)});
      }
  fmt::print("\nClassifier latency per face (median; batch forward time / batch)\n\n{}",
             markdown_table({"input", "batch", "threads", "OpenCV DNN ms/face", "XNNPACK ms/face",
                             "LibTorch eager ms/face", "XNNPACK vs OpenCV", "OpenCV vs LibTorch"},
                            rows));
  // The physical floor: the network's arithmetic at the FMA units' measured peak (a matrix
  // product's rate, shown beside it, is no floor: XNNPACK's kernels beat OpenBLAS' sgemm).
  std::vector<std::vector<std::string>> floor_rows;
  for (int threads : o.threads) {
    const auto peak_text = run_isolated([&] {
      const auto p = measure_fma_peak(threads, std::max(1.0, o.seconds));
      return fmt::format("{} {}", p.flops, p.isa);
    });
    const double peak = std::stod(peak_text.substr(0, peak_text.find(' ')));
    const std::string isa = peak_text.substr(peak_text.find(' ') + 1);
    const double sgemm =
        std::stod(run_isolated([&] { return fmt::format("{}", measured_peak_flops(threads, o.seconds)); }));
    for (int size : o.sizes) {
      const double macs = std::stod(run_isolated([&] { return fmt::format("{}", classifier_macs(size)); }));
      const double floor_ms = 2 * macs / peak * 1000;
      const auto it = best_xnn_ms.find({size, threads});
      floor_rows.push_back({std::to_string(size), std::to_string(threads), fmt::format("{:.1f}", macs / 1e6),
                            fmt::format("{:.1f} ({})", peak / 1e9, isa), fmt::format("{:.1f}", sgemm / 1e9),
                            fmt::format("{:.2f}", floor_ms),
                            it == best_xnn_ms.end() ? "-" : fmt::format("{:.2f}", it->second),
                            it == best_xnn_ms.end() ? "-" : fmt::format("{:.0f} %", 100 * floor_ms / it->second)});
      results.push_back({{"floor", true},
                         {"input", size},
                         {"threads", threads},
                         {"macs", macs},
                         {"fma_peak_flops", peak},
                         {"fma_isa", isa},
                         {"sgemm_flops", sgemm}});
    }
  }
  fmt::print(
      "\nPhysical floor per face: 2 x MACs / FMA peak (every thread running independent fused multiply-adds; "
      "the 1024x1024 sgemm rate for comparison)\n\n{}",
      markdown_table({"input", "threads", "MMACs", "FMA peak GFLOP/s", "sgemm GFLOP/s", "floor ms",
                      "XNNPACK ms (batch 1)", "XNNPACK at % of peak"},
                     floor_rows));
  return results;
}

// Face detection per 640x480 frame for each detector candidate (each in a fresh child).
json face_detector_section(const BenchOpts& o) {
  std::vector<std::vector<std::string>> rows;
  json results = json::array();
  const int threads = resolve_threads(0);
  struct Case {
    std::string model;
    int width;
    bool xnnpack;  // 2023 models only; the 2022 model runs on OpenCV's cv::FaceDetectorYN
    bool multi_look = false;  // four looks, as `detect` looks at a still
  };
  const std::vector<Case> cases = {
      {"yunet-2022", 320, false}, {"yunet-n", 320, false}, {"yunet-n", 320, true},  {"yunet-s", 320, true},
      {"yunet-n", 384, true},     {"yunet-n", 416, true},  {"yunet-n", 448, true},  {"yunet-2022", 480, false},
      {"yunet-n", 480, false},    {"yunet-n", 480, true},  {"yunet-2022", 640, false}, {"yunet-n", 640, false},
      {"yunet-n", 640, true},     {"yunet-n-scenes", 384, true}, {"yunet-n-scenes", 384, true, true}};
  for (const auto& [model, width, xnnpack, multi_look] : cases) {
    std::vector<std::string> row = {model, xnnpack ? "XNNPACK" : "OpenCV DNN", std::to_string(width),
                                    multi_look ? "4 (still)" : "1"};
    for (int faces : {1, 4}) {
      const auto r = json::parse(run_isolated([&, model = model, width = width, xnnpack = xnnpack,
                                               multi_look = multi_look] {
        FaceDetectorOptions d;
        d.model = model;
        d.detect_width = width;
        d.xnnpack = xnnpack;
        d.multi_look = multi_look;
        const auto b = bench_face_detector(d, o.clip, faces, o.seconds, threads);
        return json{{"model", model},
                    {"engine", xnnpack ? "xnnpack" : "opencv"},
                    {"detect_width", width},
                    {"looks", multi_look ? 4 : 1},
                    {"faces", faces},
                    {"threads", threads},
                    {"median_ms", b.median_ms},
                    {"found_per_frame", b.faces_per_frame},
                    {"iterations", b.iterations}}
            .dump();
      }));
      row.push_back(fmt::format("{:.2f}", r["median_ms"].get<double>()));
      row.push_back(fmt::format("{:.2f}", r["found_per_frame"].get<double>()));
      results.push_back(r);
    }
    rows.push_back(row);
  }
  fmt::print(
      "\nFace detection per 640x480 frame ({} threads, median; the clip's frames, one face or a mosaic of four)\n\n{}",
      threads,
      markdown_table({"model", "engine", "detect width", "looks", "1 face: ms", "found", "4 faces: ms", "found"}, rows));
  return results;
}

// Runs one pipeline case in the runtime executable (no LibTorch loaded, its own memory).
PipelineBenchResult pipeline_case(const BenchOpts& o, int faces, bool decode, double reclassify_after_s) {
  std::vector<std::string> args = {sibling_executable(kRuntimeBinary).string(),
                                   "bench-pipeline",
                                   "--model",
                                   o.model,
                                   "--clip",
                                   o.clip,
                                   "--faces",
                                   std::to_string(faces),
                                   "--frames",
                                   std::to_string(std::max(100, static_cast<int>(o.seconds * 100))),
                                   "--reclassify-after",
                                   fmt::format("{}", reclassify_after_s)};
  if (decode) args.push_back("--decode");
  const auto r = run_process(args);
  if (r.exit_code != 0) throw Error(fmt::format("pipeline benchmark case failed (exit code {})", r.exit_code));
  return json::parse(r.out).get<PipelineBenchResult>();
}

json pipeline_section(const BenchOpts& o) {
  std::vector<std::vector<std::string>> rows;
  std::vector<PipelineBenchResult> results;
  const double scheduled = ClassifyScheduleOptions{}.refresh_s;
  for (int faces : {1, 4})
    for (double reclassify : {0.0, scheduled})
      for (bool decode : {false, true}) {
        const auto r = pipeline_case(o, faces, decode, reclassify);
        rows.push_back({std::to_string(faces), decode ? "yes" : "no",
                        reclassify > 0 ? fmt::format("{:g} s", reclassify) : "every frame",
                        fmt::format("{:.1f}", r.faces_found_per_frame), fmt::format("{:.2f}", r.classified_per_frame),
                        fmt::format("{:.2f}", r.decode_ms), fmt::format("{:.2f}", r.detect_ms),
                        fmt::format("{:.2f}", r.classify_ms), fmt::format("{:.3f}", r.track_ms),
                        fmt::format("{:.2f}", r.draw_ms), fmt::format("{:.2f}", r.mean_frame_ms),
                        fmt::format("{:.2f}", r.p95_frame_ms), fmt::format("{:.1f}", r.fps()),
                        fmt::format("{:.0f}", r.peak_rss_mib),
                        r.all_members_share < 0 ? "-" : fmt::format("{:.1f} %", 100 * r.all_members_share)});
        results.push_back(r);
      }
  fmt::print(
      "\nEnd to end per 640x480 frame ({} threads; frames timed as from a 30 fps camera; stage columns and "
      "frame ms are means, FPS = 1000 / mean frame ms; model {})\n\n{}",
      results[0].threads, o.model,
      markdown_table({"faces", "decode", "reclassify", "found", "classified", "decode ms", "detect ms", "classify ms",
                      "track ms", "draw ms", "frame ms", "p95 ms", "FPS", "peak RSS MiB", "faces on every member"},
                     rows));
  return results;
}

// The default training recipe end to end, in a child process (its own peak RSS).
json train_section(const BenchOpts& o) {
  const auto r = json::parse(run_isolated([&] {
    const auto dir = std::filesystem::temp_directory_path() / fmt::format("maskwatch-bench-train-{}", getpid());
    TrainOptions t;
    t.data.assign(o.train_data.begin(), o.train_data.end());
    if (t.data.empty()) use_default_training_data(t);
    if (std::filesystem::exists(default_exclude_path())) t.exclude = default_exclude_path();
    t.backbone = asset_path(kQuantBackbone);
    t.out = dir;
    t.force = true;
    const auto m = train_mask_model(t).metrics;
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    return json{{"images", m.data["images"]},
                {"timing", m.timing.to_json()},
                {"peak_rss_mib", m.peak_rss_mib},
                {"test_balanced_accuracy", m.test.overall.balanced_accuracy},
                {"test_n", m.test.overall.n},
                {"phase1_epochs", m.recipe["epochs"]},
                {"phase2_epochs", m.recipe["fine_tune_epochs"]},
                {"views", m.recipe["views"]},
                {"train_images", m.split["counts"]["train"]}}
        .dump();
  }));
  const auto& t = r["timing"];
  const auto sec = [](const json& v) { return fmt::format("{:.1f}", v.get<double>()); };
  const std::vector<std::vector<std::string>> rows = {
      {"data: decode + face crops", sec(t["decode_seconds"])},
      {"data: features (unaugmented, all images)", sec(t["features_seconds"])},
      {"data: near-duplicates (mirrored features, ORB checks)", sec(t["near_duplicates_seconds"])},
      {fmt::format("phase 1: {} augmented views through the frozen backbone", r["views"].get<int>()),
       sec(t["views_seconds"])},
      {fmt::format("phase 1: {} head epochs on the views", r["phase1_epochs"].get<int>()),
       fmt::format("{:.1f}", t["phase1_seconds"].get<double>() - t["views_seconds"].get<double>())},
      {fmt::format("phase 2: {} fine-tuning epochs", r["phase2_epochs"].get<int>()), sec(t["phase2_seconds"])},
      {"calibration, export, test through ONNX, plots", sec(t["finish_seconds"])},
      {"whole run (wall clock)", sec(t["wall_seconds_this_run"])}};
  fmt::print("\nTraining, default recipe on {} ({} images)\n\n{}",
             o.train_data.empty() ? std::string("seed-masks + real-masks + real-masks-incorrect (folded)")
                                  : fmt::format("{}", fmt::join(o.train_data, " + ")),
             r["images"].get<int>(), markdown_table({"stage", "seconds"}, rows));
  fmt::print("\npeak RSS {:.0f} MiB; test balanced accuracy {:.2f}% on {} images (de-duplicated split)\n",
             r["peak_rss_mib"].get<double>(), 100 * r["test_balanced_accuracy"].get<double>(), r["test_n"].get<int>());
  return r;
}

}  // namespace

void add_bench_command(CLI::App& root) {
  auto o = std::make_shared<BenchOpts>();
  auto* cmd = root.add_subcommand("bench", "Measure speed and print the tables quoted in README.md");
  cmd->add_option("--json", o->json_out, "Also write all measurements as JSON");
  cmd->add_option("--seconds", o->seconds,
                  "Minimum measuring time per case (each table has many cases, each in its own process: the "
                  "default tables take a few minutes whatever this is)")
      ->capture_default_str()
      ->check(in_range(0.01, 3600.0));  // CLI11's PositiveNumber lets NaN through
  cmd->add_option("--threads", o->threads, "Thread counts to measure (default: 1 and all cores)")
      ->check(in_range(1, 4 * resolve_threads(0)));
  cmd->add_flag("--train", o->train, "Also time the default training recipe end to end (about 10 minutes)");
  cmd->add_flag("--serve", o->serve, "Also load-test `serve`: 2 cameras, 8 MJPEG viewers, /api/stats at 20 Hz (20 s)");
  cmd->add_option("--train-data", o->train_data,
                  "Data folders for --train (default: the default recipe's, as `train` without --data)");
  check_input_size_option(cmd->add_option("--sizes", o->sizes, "Classifier input sizes to measure (multiples of 32)")
                              ->capture_default_str());
  auto skip_classifier = std::make_shared<bool>(false), skip_pipeline = std::make_shared<bool>(false);
  cmd->add_flag("--no-classifier", *skip_classifier, "Skip the classifier latency table");
  cmd->add_flag("--no-pipeline", *skip_pipeline, "Skip the end-to-end pipeline table");
  cmd->add_option("--model", o->model, "Model for the pipeline table")->capture_default_str();
  cmd->add_option("--clip", o->clip, "Webcam clip the pipeline test frames come from")->capture_default_str();
  cmd->callback([o, skip_classifier, skip_pipeline] {
    o->classifier = !*skip_classifier;
    o->pipeline = !*skip_pipeline;
    if (o->threads.empty()) {
      const int all = resolve_threads(0);
      o->threads = all > 1 ? std::vector<int>{1, all} : std::vector<int>{1};
    }
    // A model that does not load, or a --json that cannot be written or would replace a file the
    // bench reads, is said now, in one line, not after minutes of tables.
    if (!o->json_out.empty()) {
      auto inputs = model_files(o->model);
      inputs.emplace_back(o->clip);
      for (const char* face_model : {"yunet-2022", "yunet-n", "yunet-s", "yunet-n-scenes"})  // the detection table's
        inputs.push_back(resolve_face_model(face_model));
      InputFiles(inputs).refuse_overwriting(o->json_out, "JSON file");
      check_output_path(o->json_out, "JSON file");
    }
    if (o->pipeline) MaskClassifier check(o->model);
    fmt::print("maskwatch bench on {}\n", machine_description());
    json out{{"machine", machine_description()}};
    if (o->classifier) {
      out["classifier"] = classifier_section(*o);
      out["blas"] = out["classifier"].front().value("blas", "?");
      fmt::print("\nLibTorch BLAS: {}\nEach case runs in its own process (fresh thread pools).\n",
                 out["blas"].get<std::string>());
    }
    if (o->pipeline) out["face_detector"] = face_detector_section(*o);
    if (o->pipeline) out["pipeline"] = pipeline_section(*o);
    if (o->train) out["train"] = train_section(*o);
    if (o->serve) {
      std::fflush(stdout);
      const auto r =
          run_process({sibling_executable(kRuntimeBinary).string(), "bench-serve"}, /*capture_stdout=*/false);
      if (r.exit_code != 0) throw Error(fmt::format("serve benchmark failed (exit code {})", r.exit_code));
    }
    out["peak_rss_mib"] = peak_rss_mib();
    if (!o->json_out.empty()) write_json_atomic(o->json_out, out);
  });
}

}  // namespace maskwatch::app
