// `run`'s keys c (snapshot) and v (record): the files they write, and that a folder which cannot
// be written is a message for the overlay, not an exception that would end the run.
#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "app/run_keys.h"
#include "media/video_reader.h"
#include "support.h"

using namespace maskwatch;
using namespace maskwatch::test;

namespace {

cv::Mat frame(int shade) { return cv::Mat(120, 160, CV_8UC3, cv::Scalar(shade, 255 - shade, 128)); }

// A "folder" that is a regular file: nothing can be written under it.
fs::path blocked_dir(const TempDir& dir) {
  const auto path = dir / "not-a-folder";
  write_bytes(path, "x");
  return path / "snaps";
}

int count_frames(const fs::path& video) {
  VideoReader r;
  EXPECT_TRUE(r.open(video.string())) << r.error();
  int n = 0;
  for (cv::Mat f; r.read(f);) ++n;
  return n;
}

}  // namespace

TEST(RunKeys, SnapshotSavesTheAnnotatedFrame) {
  TempDir dir;
  const auto msg = app::snapshot_key(dir / "snaps", "20261205-140000", 17, frame(40));
  const auto path = dir / "snaps" / "maskwatch-20261205-140000-17.png";
  EXPECT_EQ(msg, "snapshot " + path.string());
  const cv::Mat back = cv::imread(path.string());
  ASSERT_FALSE(back.empty());
  EXPECT_EQ(cv::norm(back, frame(40), cv::NORM_INF), 0);  // PNG: the pixels as drawn
}

TEST(RunKeys, ASnapshotThatCannotBeWrittenIsAMessage) {
  TempDir dir;
  const auto where = blocked_dir(dir);
  std::string msg;
  EXPECT_NO_THROW(msg = app::snapshot_key(where, "s", 1, frame(40)));
  EXPECT_EQ(msg.rfind("snapshot failed: ", 0), 0u) << msg;
  EXPECT_NE(msg.find("not-a-folder"), std::string::npos) << msg;  // says where
  EXPECT_EQ(app::snapshot_key(dir.path, "s", 1, cv::Mat()), "no frame to save yet");
  EXPECT_FALSE(fs::exists(dir / "maskwatch-s-1.png"));
}

TEST(RunKeys, RecordStartsAndStopsAVideo) {
  TempDir dir;
  std::unique_ptr<VideoRecorder> recorder;
  std::vector<std::string> recordings;
  const auto path = dir / "maskwatch-r1.mp4";
  EXPECT_EQ(app::record_key(recorder, dir.path, "r1", 15, recordings).message, "recording " + path.string());
  ASSERT_NE(recorder, nullptr);
  for (int i = 0; i < 6; ++i) recorder->write(frame(30 * i));
  const auto saved = app::record_key(recorder, dir.path, "r2", 15, recordings);
  EXPECT_EQ(saved.message, "saved " + path.string() + " (6 frames)");
  EXPECT_EQ(saved.lost, "");
  EXPECT_EQ(recorder, nullptr);
  EXPECT_EQ(recordings, std::vector<std::string>{path.string()});
  EXPECT_EQ(count_frames(path), 6);

  // Stopped before a frame came: no file, and none listed.
  EXPECT_EQ(app::record_key(recorder, dir.path, "r3", 15, recordings).message,
            "recording " + (dir / "maskwatch-r3.mp4").string());
  EXPECT_EQ(app::record_key(recorder, dir.path, "r4", 15, recordings).message,
            "recording stopped before its first frame: no file");
  EXPECT_FALSE(fs::exists(dir / "maskwatch-r3.mp4"));
  EXPECT_EQ(recordings.size(), 1u);
}

TEST(RunKeys, ARecordingThatCannotStartIsAMessage) {
  TempDir dir;
  std::unique_ptr<VideoRecorder> recorder;
  std::vector<std::string> recordings;
  app::RecordKeyResult result;
  EXPECT_NO_THROW(result = app::record_key(recorder, blocked_dir(dir), "r", 15, recordings));
  EXPECT_EQ(result.message.rfind("recording failed: ", 0), 0u) << result.message;
  EXPECT_EQ(result.lost, "");  // nothing was recorded, so nothing is lost: the run does not fail for it
  EXPECT_EQ(recorder, nullptr);
  EXPECT_TRUE(recordings.empty());
}

// A recording whose file cannot be put in place when v stops it is lost work: the overlay says
// so and the result carries why, which `run` turns into exit 1 after its summary.
TEST(RunKeys, ARecordingThatCannotBeFinishedIsLost) {
  TempDir dir;
  std::unique_ptr<VideoRecorder> recorder;
  std::vector<std::string> recordings;
  const auto path = dir / "maskwatch-r.mp4";
  ASSERT_EQ(app::record_key(recorder, dir.path, "r", 15, recordings).message, "recording " + path.string());
  for (int i = 0; i < 3; ++i) recorder->write(frame(50 * i));
  fs::create_directories(path / "occupied");  // a folder where the file should go: the rename fails
  app::RecordKeyResult result;
  EXPECT_NO_THROW(result = app::record_key(recorder, dir.path, "r2", 15, recordings));
  EXPECT_EQ(result.message.rfind("recording failed: cannot move recording into place at " + path.string(), 0), 0u)
      << result.message;
  EXPECT_EQ(result.lost.rfind("cannot move recording into place at " + path.string(), 0), 0u) << result.lost;
  EXPECT_EQ(recorder, nullptr);
  EXPECT_TRUE(recordings.empty());
}
