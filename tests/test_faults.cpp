// Faults a hostile tester found (issue 11), each kept fixed: signals, odd folders, bad
// option values, late output checks, two writers of one events file, a sidecar that lies
// about the input size, the wrong face model, truncated JPEGs. Streams: test_stream_faults.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <algorithm>
#include <csignal>
#include <functional>
#include <fstream>
#include <thread>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/videoio.hpp>

#include "media/image_io.h"
#include "model/model_meta.h"
#include "support.h"
#include "util/json_io.h"
#include "util/paths.h"

using namespace maskwatch;
using namespace maskwatch::test;

namespace {

fs::path clip() { return shared_path("samples/video/webcam-mask-on-off.mp4"); }

// The webcam clip repeated: long enough (about 20 s to process) to signal a run mid-way.
fs::path long_clip(const TempDir& dir, int repeats = 6) {
  const fs::path out = dir / "long.avi";
  cv::VideoCapture in(clip().string());
  std::vector<cv::Mat> frames;
  for (cv::Mat f; in.read(f);) frames.push_back(f.clone());
  cv::VideoWriter w(out.string(), cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 15, frames.at(0).size());
  for (int r = 0; r < repeats; ++r)
    for (const auto& f : frames) w.write(f);
  return out;
}

int frames_in_video(const fs::path& p) {
  cv::VideoCapture cap(p.string());
  int n = 0;
  for (cv::Mat f; cap.read(f);) ++n;
  return n;
}

// A good face photo from the seed set, as JPEG bytes.
std::string face_jpeg() {
  for (const auto& e : fs::directory_iterator(shared_path("data/seed-masks/without_mask"))) return read_bytes(e.path());
  return {};
}

}  // namespace

TEST(Faults, SigtermAndSighupFinishTheRecordingAndTheSummary) {
  TempDir dir;
  const auto video = long_clip(dir);
  // SIGINT is a double press of Ctrl-C 50 ms apart: the second used to kill the stop that was
  // finishing the recording (exit 130, an unplayable .part file, no summary).
  for (int sig : {SIGTERM, SIGHUP, SIGINT}) {
    const std::string tag = std::to_string(sig);  // fresh files per signal: the wait below reads them
    const auto events = dir / ("events" + tag + ".jsonl"), record = dir / ("out" + tag + ".mp4"),
               summary = dir / ("sum" + tag + ".json");
    BackgroundProcess p(cli_argv({"run", "--source", video.string(), "--no-display", "--events", events.string(),
                                  "--record", record.string(), "--json", summary.string()}));
    ASSERT_TRUE(wait_until([&] { return line_count(events) >= 20; }, 60)) << p.err();
    p.signal(sig);
    if (sig == SIGINT) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      p.signal(sig);
    }
    EXPECT_EQ(p.wait(3), 0) << "signal " << sig << ": " << p.err();
    ASSERT_TRUE(fs::exists(summary)) << p.err();
    const auto s = read_json(summary);
    EXPECT_GE(s["frames"].get<int>(), 15);  // 20 event lines: frames plus verdict changes
    EXPECT_LT(s["frames"].get<int>(), 6 * 78) << "the run was not stopped early";
    // The recording is closed properly (playable), with every processed frame.
    EXPECT_EQ(frames_in_video(record), s["frames"].get<int>());
  }
}

TEST(Faults, TinyImagesAndSymlinkLoopsAreSkippedNotFatal) {
  TempDir dir;
  const auto folder = dir / "imgs";
  fs::create_directories(folder);
  write_bytes(folder / "a.jpg", face_jpeg());
  ASSERT_TRUE(cv::imwrite((folder / "b_tiny.png").string(), cv::Mat(1, 1, CV_8UC3, cv::Scalar(1, 2, 3))));
  ASSERT_TRUE(cv::imwrite((folder / "c_banner.png").string(), cv::Mat(300, 1920, CV_8UC3, cv::Scalar(90, 120, 200))));
  fs::create_symlink("loop.jpg", folder / "loop.jpg");  // points at itself
  write_bytes(folder / "d.jpg", face_jpeg());
  const auto r = run_cli({"detect", folder.string(), "--json", (dir / "d.json").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto results = read_json(dir / "d.json");
  ASSERT_EQ(results.size(), 4u);  // a, b, c, d: the loop is skipped
  EXPECT_EQ(results[0]["faces"].size(), 1u);
  EXPECT_EQ(results[1]["faces"].size(), 0u);
  EXPECT_EQ(results[3]["faces"].size(), 1u);
  EXPECT_NE(r.err.find("loop.jpg"), std::string::npos) << r.err;

  const auto run = run_cli({"run", "--source", folder.string(), "--no-display", "--json", (dir / "r.json").string()});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(read_json(dir / "r.json")["frames"].get<int>(), 4);
  // Named on its own, the loop is said as such (it was "input not found").
  const auto loop = run_cli({"detect", (folder / "loop.jpg").string()});
  EXPECT_EQ(loop.exit_code, 1);
  EXPECT_NE(loop.err.find("loop.jpg: Too many levels of symbolic links"), std::string::npos) << loop.err;
}

// One image named twice, through a link, and inside a folder named too: one result, with a
// line for each repeat (it was looked at, written and counted three times).
TEST(Faults, AFileNamedTwiceIsLookedAtOnce) {
  TempDir dir;
  const auto folder = dir / "imgs";
  fs::create_directories(folder);
  write_bytes(folder / "a.jpg", face_jpeg());
  fs::create_symlink(folder / "a.jpg", dir / "link.jpg");
  const std::string a = (folder / "a.jpg").string();
  const auto r = run_cli({"detect", a, (dir / "link.jpg").string(), folder.string(), a, "--json",
                          (dir / "d.json").string(), "--out", (dir / "out").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto results = read_json(dir / "d.json");
  ASSERT_EQ(results.size(), 1u) << results.dump();
  EXPECT_EQ(results[0]["image"], a);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir / "out"), fs::directory_iterator{}), 1);
  EXPECT_NE(r.err.find((dir / "link.jpg").string() + ": the same file as " + a + ", looked at once"),
            std::string::npos)
      << r.err;
  // The folder's entry and the fourth argument: both the same spelling as the first.
  const std::string again = a + ": the same file as " + a;
  EXPECT_NE(r.err.find(again), r.err.rfind(again)) << r.err;
  // A folder of 5 named twice: three lines, then one that counts the rest.
  for (int i = 0; i < 4; ++i) write_bytes(folder / ("b" + std::to_string(i) + ".jpg"), face_jpeg());
  const auto twice = run_cli({"detect", folder.string(), folder.string(), "--json", (dir / "t.json").string()});
  ASSERT_EQ(twice.exit_code, 0) << twice.err;
  EXPECT_EQ(read_json(dir / "t.json").size(), 5u);
  size_t lines = 0;
  for (size_t at = twice.err.find("the same file as"); at != std::string::npos;
       at = twice.err.find("the same file as", at + 1))
    ++lines;
  EXPECT_EQ(lines, 3u) << twice.err;
  EXPECT_NE(twice.err.find("2 more repeat(s), each file looked at once"), std::string::npos) << twice.err;
  // A FIFO named like a video is skipped as a video at once (looking into it waited for a writer).
  ASSERT_EQ(mkfifo((dir / "cam.ts").c_str(), 0600), 0);
  const auto fifo = run_cli({"detect", (dir / "cam.ts").string()}, 30);
  EXPECT_EQ(fifo.exit_code, 1) << fifo.err;
  EXPECT_NE(fifo.err.find("a video, not a still image"), std::string::npos) << fifo.err;
}

TEST(Faults, OutOfRangeNumbersAreUsageErrors) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"detect", "x.jpg", "--threads", "10000"},
        std::vector<std::string>{"detect", "x.jpg", "--threads", "-5"},
        std::vector<std::string>{"run", "--source", "x.mp4", "--max-frames", "-1"},
        std::vector<std::string>{"run", "--source", "x.mp4", "--max-frames", "99999999999999999999"},
        std::vector<std::string>{"run", "--source", "x.mp4", "--width", "-5"},
        std::vector<std::string>{"run", "--source", "x.mp4", "--height", "7"},
        std::vector<std::string>{"train", "--out", "/tmp/never", "--threads", "100000"}}) {
    const auto r = run_cli(args);
    EXPECT_EQ(r.exit_code, 2) << args[0] << " " << args[args.size() - 2] << " " << args.back() << ": " << r.err;
    EXPECT_EQ(r.err.find("e+308"), std::string::npos) << r.err;  // no DBL_MAX in the message
    EXPECT_EQ(r.err.find("not a whole number"), std::string::npos) << r.err;  // they are, out of range
  }
}

TEST(Faults, OutputPathsAreCheckedBeforeAnyWork) {
  TempDir dir;
  write_bytes(dir / "file", "not a folder");
  const auto video = long_clip(dir, 3);
  for (const char* flag : {"--json", "--events", "--record"}) {
    const auto r =
        run_cli({"run", "--source", video.string(), "--no-display", flag, (dir / "file" / "out.x").string()});
    EXPECT_EQ(r.exit_code, 1) << flag;
    EXPECT_NE(r.err.find("file/out.x"), std::string::npos) << flag << ": " << r.err;
    EXPECT_EQ(r.out.find("frames"), std::string::npos) << flag << ": the video was processed first";
  }
  // Missing parent folders are created for every output, --events included.
  const auto r = run_cli({"run", "--source", clip().string(), "--no-display", "--max-frames", "3", "--events",
                          (dir / "new" / "deeper" / "e.jsonl").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(line_count(dir / "new" / "deeper" / "e.jsonl"), 3u + 2u);  // 3 frames + the track's new and end
  const auto d = run_cli({"detect", clip().string(), "--out", (dir / "file" / "annotated").string()});
  EXPECT_EQ(d.exit_code, 1);
}

TEST(Faults, ASecondWriterOfOneEventsFileIsRefused) {
  TempDir dir;
  const auto video = long_clip(dir, 3);
  const auto events = dir / "events.jsonl";
  BackgroundProcess first(cli_argv({"run", "--source", video.string(), "--no-display", "--events", events.string()}));
  ASSERT_TRUE(wait_until([&] { return line_count(events) >= 5; }, 60)) << first.err();
  const auto second = run_cli({"run", "--source", video.string(), "--no-display", "--events", events.string()});
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_NE(second.err.find("another process is writing it"), std::string::npos) << second.err;
  // Nor may another run's summary replace it (it was renamed over the file being written).
  const auto summary = run_cli({"run", "--source", clip().string(), "--no-display", "--max-frames", "3", "--json",
                                events.string()});
  EXPECT_EQ(summary.exit_code, 1);
  EXPECT_NE(summary.err.find("another process is writing it"), std::string::npos) << summary.err;
  EXPECT_EQ(first.wait(120), 0) << first.err();
  // Every line of the first writer's file is whole JSON.
  std::ifstream in(events);
  int n = 0;
  for (std::string line; std::getline(in, line); ++n) EXPECT_TRUE(json::accept(line)) << "line " << n;
  EXPECT_GE(n, 3 * 78);
}

// Outputs that are one file, or not plain files (review of 2026-12-05): a recording and the
// events in one file kept the video and lost every event; --json through a symlink replaced
// the link with a plain file, into a FIFO it gave the reader nothing (for root, --json
// /dev/full replaced the device).
TEST(Faults, OutputsThatAreOneFileALinkOrAPipe) {
  TempDir dir;
  const auto three_frames = [&](const std::vector<std::string>& outputs) {
    std::vector<std::string> args = {"run", "--source", clip().string(), "--no-display", "--max-frames", "3"};
    args.insert(args.end(), outputs.begin(), outputs.end());
    return run_cli(args);
  };
  // A run with one output into a FIFO, and what a reader got from it.
  const auto into_fifo = [&](const std::string& flag) {
    std::string got;
    std::thread reader([&] { got = read_bytes(dir / "fifo"); });
    const auto r = three_frames({flag, (dir / "fifo").string()});
    reader.join();
    return std::make_pair(r, got);
  };
  const auto same =
      three_frames({"--record", (dir / "out.mp4").string(), "--events", (dir / "." / "out.mp4").string()});
  EXPECT_EQ(same.exit_code, 1);
  EXPECT_NE(same.err.find("the recording and the events file are the same file"), std::string::npos) << same.err;
  EXPECT_FALSE(fs::exists(dir / "out.mp4"));
  write_bytes(dir / "in" / "face.jpg", face_jpeg());
  const auto det = run_cli({"detect", (dir / "in").string(), "--out", (dir / "ann").string(), "--json",
                            (dir / "ann" / "face.png").string()});
  EXPECT_EQ(det.exit_code, 1);
  EXPECT_NE(det.err.find("same file"), std::string::npos) << det.err;

  fs::create_symlink(dir / "real.json", dir / "link.json");
  const auto linked = three_frames({"--json", (dir / "link.json").string()});
  ASSERT_EQ(linked.exit_code, 0) << linked.err;
  EXPECT_TRUE(fs::is_symlink(dir / "link.json"));
  EXPECT_EQ(read_json(dir / "real.json")["frames"], 3);

  ASSERT_EQ(::mkfifo((dir / "fifo").c_str(), 0600), 0);
  const auto [piped, got] = into_fifo("--json");
  ASSERT_EQ(piped.exit_code, 0) << piped.err;
  EXPECT_EQ(fs::status(dir / "fifo").type(), fs::file_type::fifo);
  EXPECT_EQ(json::parse(got)["frames"], 3);
  // Events streamed into a FIFO (they failed: "Invalid argument", from truncating it).
  const auto [streamed, lines] = into_fifo("--events");
  ASSERT_EQ(streamed.exit_code, 0) << streamed.err;
  EXPECT_EQ(std::count(lines.begin(), lines.end(), '\n'), 5) << lines;  // 3 frames, the track's new and end
  // '-' is not standard output here: it wrote a file named '-' into the current folder.
  const fs::path dash = fs::current_path() / "-";
  fs::remove(dash);
  for (const std::string flag : {"--json", "--events"}) {
    const auto r = three_frames({flag, "-"});
    EXPECT_EQ(r.exit_code, 1) << flag;
    EXPECT_NE(r.err.find("'-': name a file (to print it, name /dev/stdout"), std::string::npos) << r.err;
  }
  EXPECT_EQ(run_cli({"detect", (dir / "in").string(), "--json", "-"}).exit_code, 1);
  EXPECT_FALSE(fs::exists(dash));
}

// A display that cannot be reached (a stale `ssh -X` session): Qt aborted the run (exit 134, an
// empty events file left behind); now one line, exit 1, nothing written.
TEST(Faults, ADisplayThatCannotBeReachedIsOneLineNotAnAbort) {
  TempDir dir;
  const char* before = std::getenv("DISPLAY");
  const std::string saved = before ? before : "";
  setenv("DISPLAY", ":97", 1);  // no X server here answers on :97
  const auto r = run_cli({"run", "--source", clip().string(), "--max-frames", "3", "--events",
                          (dir / "e.jsonl").string()});
  if (before)
    setenv("DISPLAY", saved.c_str(), 1);
  else
    unsetenv("DISPLAY");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("cannot connect to the display :97: use --no-display"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_FALSE(fs::exists(dir / "e.jsonl"));
}

TEST(Faults, ASidecarWhoseInputSizeDiffersFromTheOnnxIsRefused) {
  TempDir dir;
  fs::copy_file(default_model_path(), dir / "model.onnx");
  auto meta = read_json(sidecar_path(default_model_path()));
  meta["input"]["width"] = 96;
  meta["input"]["height"] = 96;
  write_json_atomic(dir / "model.json", meta);
  write_bytes(dir / "face.jpg", face_jpeg());
  const auto r = run_cli({"detect", (dir / "face.jpg").string(), "--model", (dir / "model.onnx").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("sidecar"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("96x96"), std::string::npos) << r.err;
}

// A sidecar that would make every answer wrong is refused, not followed: one class named twice
// gave "with_mask 100%" for a bare face; channels and layout were ignored.
TEST(Faults, ASidecarThatWouldMisreadTheModelIsRefused) {
  TempDir dir;
  fs::copy_file(default_model_path(), dir / "model.onnx");
  write_bytes(dir / "face.jpg", face_jpeg());
  const auto base = read_json(sidecar_path(default_model_path()));
  const std::vector<std::pair<std::function<void(nlohmann::json&)>, std::string>> cases = {
      {[](nlohmann::json& m) { m["classes"] = {"with_mask", "with_mask"}; }, "named twice"},
      {[](nlohmann::json& m) { m["input"]["channels"] = 1; }, "only 3-channel input"},
      {[](nlohmann::json& m) { m["input"]["layout"] = "NHWC"; }, "only NCHW input layout"}};
  for (const auto& [edit, why] : cases) {
    auto meta = base;
    edit(meta);
    write_json_atomic(dir / "model.json", meta);
    const auto r = run_cli({"detect", (dir / "face.jpg").string(), "--model", (dir / "model.onnx").string()});
    EXPECT_EQ(r.exit_code, 1) << why << ": " << r.out;
    EXPECT_NE(r.err.find(why), std::string::npos) << r.err;
  }
}

TEST(Faults, TheMaskModelGivenAsFaceModelIsNamedAsSuch) {
  TempDir dir;
  write_bytes(dir / "face.jpg", face_jpeg());
  const auto r = run_cli({"detect", (dir / "face.jpg").string(), "--face-model", default_model_path().string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("not a YuNet face detector"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;  // one line, no OpenCV dump
}

TEST(Faults, ATruncatedJpegIsAWarning) {
  TempDir dir;
  const auto bytes = face_jpeg();
  write_bytes(dir / "cut.jpg", bytes.substr(0, bytes.size() * 2 / 3));
  write_bytes(dir / "whole.jpg", bytes);
  const auto r = run_cli({"detect", (dir / "cut.jpg").string(), (dir / "whole.jpg").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("cut.jpg: truncated JPEG"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("whole.jpg"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("Premature end"), std::string::npos) << r.err;  // libjpeg's own line is not ours
  // `run` on the one photo says it too (it read it through a path that dropped the warning).
  const auto run = run_cli({"run", "--source", (dir / "cut.jpg").string(), "--no-display"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.err.find("cut.jpg: truncated JPEG"), std::string::npos) << run.err;
  EXPECT_EQ(run.err.find("cut.jpg: truncated JPEG"), run.err.rfind("cut.jpg: truncated JPEG")) << run.err;  // once
}

// A JPEG whose frame header claims twice the rows its data holds: libjpeg decodes it with no
// error and grey rows (cv::imread does the same, silently). A warning, not a silent answer;
// an intact file gets none.
TEST(Faults, AJpegThatClaimsMoreRowsThanItHoldsIsAWarning) {
  const std::string whole = face_jpeg();
  std::string taller = whole;
  const size_t sof = taller.find("\xFF\xC0");
  ASSERT_NE(sof, std::string::npos);
  const int rows = (static_cast<uint8_t>(taller[sof + 5]) << 8) | static_cast<uint8_t>(taller[sof + 6]);
  taller[sof + 5] = static_cast<char>((2 * rows) >> 8);
  taller[sof + 6] = static_cast<char>((2 * rows) & 0xFF);
  const auto decode = [](const std::string& bytes, std::string* warning) {
    return decode_image(std::vector<uint8_t>(bytes.begin(), bytes.end()), nullptr, warning);
  };
  std::string warning;
  const cv::Mat img = decode(taller, &warning);
  ASSERT_EQ(img.rows, 2 * rows);
  EXPECT_NE(warning.find("damaged JPEG data (Corrupt JPEG data: premature end of data segment)"), std::string::npos)
      << warning;
  std::string none;
  EXPECT_EQ(decode(whole, &none).rows, rows);
  EXPECT_EQ(none, "");
  ASSERT_EQ(whole.substr(whole.size() - 2), "\xFF\xD9");
  EXPECT_EQ(decode(whole.substr(0, whole.size() - 2), &none).rows, rows);
  EXPECT_EQ(none, "truncated JPEG (missing rows decode as grey)");  // libjpeg reads ahead: a cut file
}

TEST(Faults, AMissingCameraGivesOneLine) {
  const auto r = run_cli({"run", "--source", "99", "--no-display"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("cannot open camera 99"), std::string::npos) << r.err;
}
