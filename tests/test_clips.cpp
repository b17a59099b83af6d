// Event clips (serve/clip_recorder): which frames a clip holds, in real time; faces hidden
// before anything is stored; a still scene encoded once; what stopping, a removed camera and a
// camera without frames do; leftovers of an interrupted write. The clips are read back with
// our own FFmpeg reader.
#include <gtest/gtest.h>

#include <opencv2/imgproc.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <random>
#include <thread>

#include "media/video_reader.h"
#include "serve/clip_recorder.h"
#include "support.h"

using namespace maskwatch;
using namespace maskwatch::test;

namespace {

// A 640x480 frame: a flat grey scene with a frame number written large in its left half (to
// tell frames apart) and a "face" of fine random texture at (400, 160, 120 x 120).
const cv::Rect2f kFace(400, 160, 120, 120);
cv::Mat scene(int n) {
  cv::Mat img(480, 640, CV_8UC3, cv::Scalar(90, 100, 110));
  std::mt19937 rng(7);
  cv::Mat noise(120, 120, CV_8UC3);
  cv::randu(noise, 0, 255);
  noise.copyTo(img(cv::Rect(kFace)));
  // The frame number as a bar whose length counts (decoding keeps it within a few pixels).
  cv::rectangle(img, cv::Rect(20, 400, 10 * n + 10, 40), cv::Scalar(255, 255, 255), cv::FILLED);
  return img;
}
int bar_length(const cv::Mat& img) {  // in the clip's pixels, at its scale
  cv::Mat grey;
  cv::cvtColor(img, grey, cv::COLOR_BGR2GRAY);
  const int row = img.rows * 420 / 480;
  int n = 0;
  for (int x = 0; x < img.cols / 2; ++x) n += grey.at<uchar>(row, x) > 200;
  return n;
}

std::vector<cv::Mat> read_all(const fs::path& file, double* fps = nullptr) {
  VideoReader r;
  EXPECT_TRUE(r.open(file.string())) << r.error();
  if (fps) *fps = r.fps();
  std::vector<cv::Mat> out;
  cv::Mat f;
  while (r.read(f)) out.push_back(f.clone());
  return out;
}

// The recorder's clock: the time of the newest frame offered (as in `serve`, where both are
// the time now).
struct FakeClock {
  std::shared_ptr<std::atomic<double>> now = std::make_shared<std::atomic<double>>(0);
  std::function<double()> fn() const {
    return [n = now] { return n->load(); };
  }
};

// The keeper has taken every frame handed over (within 10 s). Tests hand frames over one at a
// time: a keeper slowed down (ASan on a busy machine) would otherwise drop offers past its
// queue, and stop() and forget() drop the ones still waiting.
bool kept_up(const ClipRecorder& rec) {
  return wait_until([&] { return rec.offers_waiting() == 0; }, 10);
}

ClipConfig config(double before, double after, double fps = 5, int width = 320) {
  ClipConfig c;
  c.before_s = before;
  c.after_s = after;
  c.fps = fps;
  c.width = width;
  return c;
}

}  // namespace

TEST(Clips, AClipHoldsBeforeToAfterInRealTimeWithFacesHidden) {
  TempDir dir;
  FakeClock clock;
  ClipRecorder rec(config(1, 1), dir / "clips", {"with_mask", "without_mask"}, {}, clock.fn());
  rec.start();
  // 10 frames a second for 3 s from t = 1000: the recorder keeps 5 a second.
  const double t0 = 1000;
  for (int i = 0; i < 30; ++i) {
    *clock.now = t0 + i * 0.1;
    rec.offer("door", t0 + i * 0.1, scene(i), {kFace}, {}, 0.0, FacePrivacy::Blurred, false);
    if (i == 15) ASSERT_TRUE(rec.request("door", t0 + 1.5, "a.mp4"));
    ASSERT_TRUE(kept_up(rec)) << i;
  }
  EXPECT_TRUE(rec.pending("a.mp4"));
  rec.stop();  // the clip's `after` lies in the past of these times: written now at the latest
  EXPECT_FALSE(rec.pending("a.mp4"));
  EXPECT_EQ(rec.written(), 1);
  double fps = 0;
  const auto frames = read_all(dir / "clips" / "a.mp4", &fps);
  EXPECT_NEAR(fps, 5, 1e-6);
  // From 0.5 s to 2.5 s of the stream: the frames kept there (6, 8, ... 24), at 5 fps.
  ASSERT_EQ(frames.size(), 10u);
  EXPECT_EQ(frames[0].cols, 320);
  EXPECT_EQ(frames[0].rows, 240);
  for (size_t k = 0; k < frames.size(); ++k)
    EXPECT_NEAR(bar_length(frames[k]), (10 * (6 + 2 * static_cast<int>(k)) + 10) / 2, 3) << k;
  // The face's fine texture did not reach the file; the picture around it did.
  const cv::Rect2f face_small(kFace.x / 2, kFace.y / 2, kFace.width / 2, kFace.height / 2);
  cv::Mat original;
  cv::resize(scene(6), original, {320, 240}, 0, 0, cv::INTER_AREA);
  EXPECT_LT(detail_energy(frames[0], face_small), 0.02 * detail_energy(original, face_small));
  // Nothing else in the folder: no temporary file left.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir / "clips"), fs::directory_iterator{}), 1);
}

TEST(Clips, PrivacyFullKeepsTheFaceAndAStillSceneIsEncodedOnce) {
  TempDir dir;
  FakeClock clock;
  ClipRecorder rec(config(0.6, 0.6, 10, 640), dir / "clips", {"with_mask", "without_mask"}, {}, clock.fn());
  rec.start();
  const double t0 = 50;
  for (int i = 0; i < 14; ++i) {
    // From frame 3 on, nothing moves: the recorder keeps frame 2's picture (the bar stays).
    *clock.now = t0 + i * 0.1;
    rec.offer("hall", t0 + i * 0.1, scene(i), {kFace}, {}, 0.0, FacePrivacy::Full, i > 2);
    ASSERT_TRUE(kept_up(rec)) << i;
  }
  ASSERT_TRUE(rec.request("hall", t0 + 0.6, "b.mp4"));
  rec.stop();
  const auto frames = read_all(dir / "clips" / "b.mp4");
  ASSERT_EQ(frames.size(), 13u);  // 0.0 .. 1.2 s
  EXPECT_NEAR(bar_length(frames[2]), 30, 3);
  EXPECT_NEAR(bar_length(frames[12]), 30, 3);
  // Full: the texture is there (H.264 keeps much of it).
  EXPECT_GT(detail_energy(frames[1], kFace), 0.3 * detail_energy(scene(1), kFace));
}

TEST(Clips, NoFramesNoClipARemovedCameraIsWrittenAtOnceAndLeftoversGo) {
  TempDir dir;
  fs::create_directories(dir / "clips");
  write_bytes(dir / "clips" / ".x.tmp1234.mp4", "half a clip");  // an interrupted write
  write_bytes(dir / "clips" / "1-kept-alert.mp4", "a finished clip");
  FakeClock clock;
  ClipRecorder rec(config(1, 30), dir / "clips", {"with_mask", "without_mask"}, {}, clock.fn());
  EXPECT_FALSE(fs::exists(dir / "clips" / ".x.tmp1234.mp4"));
  EXPECT_TRUE(fs::exists(dir / "clips" / "1-kept-alert.mp4"));
  EXPECT_FALSE(rec.request("door", 10, "early.mp4"));  // not started: refused, never pending
  rec.start();
  for (int i = 0; i < 10; ++i) {
    *clock.now = 10 + i * 0.2;
    rec.offer("door", 10 + i * 0.2, scene(i), {kFace}, {}, 0.0, FacePrivacy::Blurred, false);
    // Each frame in the ring before the next: a slow keeper (ASan on a busy machine) would drop
    // offers past its queue, and forget() drops the ones not yet kept.
    ASSERT_TRUE(wait_until([&] { return rec.frames_kept() == i + 1; }, 10)) << rec.frames_kept();
  }
  ASSERT_TRUE(rec.request("door", 11, "door.mp4"));
  // A camera that never gave a frame: nothing to wait for, nothing written.
  ASSERT_TRUE(rec.request("nobody", 11, "nobody.mp4"));
  // after_s is 30 s, but the camera goes away: its clip is written at once with what there is.
  rec.forget("door");
  ASSERT_TRUE(wait_until([&] { return !rec.pending("door.mp4") && !rec.pending("nobody.mp4"); }, 10));
  EXPECT_TRUE(fs::exists(dir / "clips" / "door.mp4"));
  rec.stop();
  EXPECT_FALSE(fs::exists(dir / "clips" / "nobody.mp4"));
  EXPECT_EQ(rec.written(), 1);
  EXPECT_EQ(rec.failed(), 1);
  EXPECT_EQ(read_all(dir / "clips" / "door.mp4").size(), 10u);  // 10.0 .. 11.8 s at 5 fps
}

TEST(Clips, FpsLimitEqualToClipFpsKeepsEveryFrameAndAReplacedCameraKeepsNoneOfTheOld) {
  TempDir dir;
  FakeClock clock;
  std::vector<std::string> lost;
  ClipRecorder rec(config(1.5, 0.5, 10), dir / "clips", {"with_mask", "without_mask"},
                   [&](const std::string& f) { lost.push_back(f); }, clock.fn());
  rec.start();
  // A 15 fps source limited to 10: frames 67 and 133 ms apart. The old camera shows faces in
  // full; a reload replaces it by one that blurs them.
  const auto offer = [&](int i, FacePrivacy p) {
    const double t = 100 + (i / 2) * 0.2 + (i % 2) * 0.1333;
    *clock.now = t;
    rec.offer("door", t, scene(i), {kFace}, {}, 0.0, p, false);
    EXPECT_TRUE(kept_up(rec)) << i;
    return t;
  };
  for (int i = 0; i < 10; ++i) offer(i, FacePrivacy::Full);
  ASSERT_TRUE(wait_until([&] { return rec.frames_kept() == 10; }, 5)) << rec.frames_kept();
  rec.forget("door");
  double t = 0;
  for (int i = 10; i < 20; ++i) t = offer(i, FacePrivacy::Blurred);
  ASSERT_TRUE(rec.request("door", t - 0.5, "door.mp4"));  // its window reaches back into the old camera's time
  rec.stop();
  EXPECT_TRUE(lost.empty());
  const auto frames = read_all(dir / "clips" / "door.mp4");
  // Only the new camera's ten frames (0.9 s at 10 fps), every one of them, blurred.
  ASSERT_EQ(frames.size(), 10u);
  for (size_t k = 0; k < frames.size(); ++k) {
    EXPECT_NEAR(bar_length(frames[k]), (10 * (10 + static_cast<int>(k)) + 10) / 2, 3) << k;
    const cv::Rect2f face_small(kFace.x / 2, kFace.y / 2, kFace.width / 2, kFace.height / 2);
    cv::Mat original;
    cv::resize(scene(10), original, {320, 240}, 0, 0, cv::INTER_AREA);
    EXPECT_LT(detail_energy(frames[k], face_small), 0.02 * detail_energy(original, face_small)) << k;
  }
}

TEST(Clips, AWindowShorterThanAFrameTakesTheNearestTheBacklogIsCappedAndLostClipsAreReported) {
  TempDir dir;
  FakeClock clock;
  std::vector<std::string> lost;
  std::mutex lost_mutex;
  ClipConfig c = config(0.05, 0.05, 2);
  ClipRecorder rec(c, dir / "clips", {"with_mask", "without_mask"},
                   [&](const std::string& f) {
                     std::lock_guard<std::mutex> lock(lost_mutex);
                     lost.push_back(f);
                   },
                   clock.fn());
  rec.start();
  for (int i = 0; i < 4; ++i) {
    *clock.now = 10 + i * 0.5;
    rec.offer("door", 10 + i * 0.5, scene(i), {kFace}, {}, 0.0, FacePrivacy::Blurred, false);
    ASSERT_TRUE(kept_up(rec)) << i;
  }
  ASSERT_TRUE(rec.request("door", 10.7, "short.mp4"));  // no frame within 0.05 s: the one at 10.5
  ASSERT_TRUE(rec.request("door", 10.7, "short.mp4"));  // two rules at one moment: one clip
  ASSERT_TRUE(rec.request("gone", 10.7, "gone.mp4"));   // a camera without frames: lost
  for (size_t i = 2; i < ClipRecorder::kMaxClips; ++i)
    ASSERT_TRUE(rec.request("door", 1e6, fmt::format("later{}.mp4", i))) << i;
  EXPECT_FALSE(rec.request("door", 1e6, "one-too-many.mp4"));
  rec.stop(0.5);
  const auto frames = read_all(dir / "clips" / "short.mp4");
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_NEAR(bar_length(frames[0]), 10, 3);  // frame 1: (10 * 1 + 10) / 2
  std::lock_guard<std::mutex> lock(lost_mutex);
  EXPECT_NE(std::find(lost.begin(), lost.end(), "gone.mp4"), lost.end());
  // The 30 "later" clips have no frames in their window but the nearest rule does not reach
  // them (1e6 s): all lost, reported, none written.
  EXPECT_EQ(lost.size(), ClipRecorder::kMaxClips - 1);
  EXPECT_EQ(rec.written(), 1);
}
