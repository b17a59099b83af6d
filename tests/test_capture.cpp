// The one capture layer (vision/capture.h), on real files: newest-frame slot, pacing, status
// changes, the end of a file, reconnect with backoff, mirror, run's blocking read.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <sys/stat.h>

#include <mutex>
#include <thread>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <vector>

#include "support.h"
#include "vision/capture.h"

using namespace maskwatch;
using namespace maskwatch::test;

namespace {

// `n` images whose left half is dark and right half bright, numbered by their blue channel.
fs::path make_folder(const TempDir& tmp, int n) {
  const fs::path folder = tmp / "stills";
  fs::create_directories(folder);
  for (int i = 0; i < n; ++i) {
    cv::Mat img(60, 80, CV_8UC3, cv::Scalar(20 * i, 0, 0));
    img(cv::Rect(40, 0, 40, 60)).setTo(cv::Scalar(20 * i, 250, 250));
    EXPECT_TRUE(cv::imwrite((folder / fmt::format("{}.png", i)).string(), img));
  }
  return folder;
}

struct Statuses {
  std::mutex mutex;
  std::vector<std::pair<CameraStatus, std::string>> seen;
  void add(CameraStatus s, const std::string& d) {
    std::lock_guard<std::mutex> lock(mutex);
    seen.emplace_back(s, d);
  }
  std::vector<std::pair<CameraStatus, std::string>> get() {
    std::lock_guard<std::mutex> lock(mutex);
    return seen;
  }
  // The callback runs just after status() changes: wait for it rather than race it.
  bool wait_for(size_t n) {
    return wait_until([&] { return get().size() >= n; }, 5);
  }
};

}  // namespace

TEST(Capture, AFolderIsPacedKeepsOnlyTheNewestFrameAndEndsOffline) {
  TempDir tmp;
  const fs::path folder = make_folder(tmp, 4);
  Statuses statuses;
  CaptureOptions o;
  o.source.folder_fps = 20;  // 50 ms apart
  o.on_status = [&](CameraStatus s, const std::string& d) { statuses.add(s, d); };
  const auto t0 = Capture::Clock::now();
  Capture capture(folder.string(), o);
  capture.start();
  // Nobody takes a frame: each one overwrites the last.
  ASSERT_TRUE(wait_until([&] { return capture.status() == CameraStatus::Offline; }, 10));
  const double took = std::chrono::duration<double>(Capture::Clock::now() - t0).count();
  EXPECT_GE(took, 0.14);  // paced: four frames 50 ms apart
  EXPECT_EQ(capture.frames_captured(), 4);
  EXPECT_EQ(capture.frames_dropped(), 3);
  SourceFrame f;
  ASSERT_TRUE(capture.take(f));
  EXPECT_EQ(f.index, 3);
  EXPECT_EQ(f.image.at<cv::Vec3b>(10, 10)[0], 60);  // the last image
  EXPECT_FALSE(capture.take(f));                     // taken once
  ASSERT_TRUE(statuses.wait_for(2));
  const auto seen = statuses.get();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].first, CameraStatus::Online);
  EXPECT_EQ(seen[1].first, CameraStatus::Offline);
  EXPECT_EQ(seen[1].second, "image folder ended; not read again (loop: false)");
  EXPECT_EQ(capture.camera_fps(), 0.0);  // not online
}

TEST(Capture, LoopStartsAgainAndMirrorFlips) {
  TempDir tmp;
  const fs::path folder = make_folder(tmp, 2);
  CaptureOptions o;
  o.source.folder_fps = 50;
  o.loop = true;
  o.mirror = true;
  Capture capture(folder.string(), o);
  capture.start();
  ASSERT_TRUE(wait_until([&] { return capture.frames_captured() >= 6; }, 10));
  EXPECT_EQ(capture.status(), CameraStatus::Online);
  SourceFrame f;
  ASSERT_TRUE(capture.take(f));
  EXPECT_LT(f.image.at<cv::Vec3b>(10, 70)[2], 10);   // the dark half is now on the right
  EXPECT_GT(f.image.at<cv::Vec3b>(10, 10)[2], 240);  // and the bright one on the left
  EXPECT_GT(capture.camera_fps(), 10);  // about 50 (reopening at each loop costs a little)
  EXPECT_LT(capture.camera_fps(), 80);
}

TEST(Capture, AMissingSourceIsRetriedWithBackoffUntilItAppears) {
  TempDir tmp;
  const fs::path later = tmp / "later";
  Statuses statuses;
  CaptureOptions o;
  o.source.folder_fps = 50;
  o.loop = true;
  o.backoff_max_s = 1;
  o.on_status = [&](CameraStatus s, const std::string& d) { statuses.add(s, d); };
  Capture capture(later.string(), o);
  capture.start();
  ASSERT_TRUE(wait_until([&] { return capture.status() == CameraStatus::Offline; }, 5));
  EXPECT_NE(capture.status_detail().find("not found"), std::string::npos) << capture.status_detail();
  // The folder appears: it is opened at the next attempt (0.5 s, then 1 s apart).
  fs::rename(make_folder(tmp, 2), later);
  EXPECT_TRUE(wait_until([&] { return capture.status() == CameraStatus::Online; }, 5)) << capture.status_detail();
  ASSERT_TRUE(wait_until([&] { return !statuses.get().empty() && statuses.get().back().first == CameraStatus::Online; }, 5));
  const auto seen = statuses.get();
  ASSERT_GE(seen.size(), 2u);
  EXPECT_EQ(seen.front().first, CameraStatus::Offline);
  EXPECT_EQ(seen.back().first, CameraStatus::Online);
}

TEST(Capture, WaitGivesEachFrameThenFalseAtTheEnd) {
  TempDir tmp;
  const fs::path folder = make_folder(tmp, 3);
  CaptureOptions o;
  o.source.folder_fps = 3;
  Capture capture(folder.string(), o);
  capture.start(/*open_here=*/true);
  std::vector<int> blues;
  SourceFrame f;
  while (capture.wait(f)) blues.push_back(f.image.at<cv::Vec3b>(0, 0)[0]);
  EXPECT_EQ(blues, (std::vector<int>{0, 20, 40}));  // 333 ms apart: the reader keeps up
  EXPECT_EQ(capture.failure(), "");                 // ended, not lost
}

TEST(Capture, OpenHereThrowsTheReasonAndADisabledCameraSaysWhy) {
  CaptureOptions o;
  Capture missing("/nonexistent/clip.mp4", o);
  try {
    missing.start(/*open_here=*/true);
    FAIL() << "no error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("video file not found: /nonexistent/clip.mp4"), std::string::npos)
        << e.what();
  }
  Statuses statuses;
  o.on_status = [&](CameraStatus s, const std::string& d) { statuses.add(s, d); };
  Capture off("/nonexistent/clip.mp4", o);
  off.disable("disabled in the config");
  EXPECT_EQ(off.status(), CameraStatus::Disabled);
  EXPECT_EQ(off.status_detail(), "disabled in the config");
  ASSERT_EQ(statuses.get().size(), 1u);
  SourceFrame f;
  EXPECT_FALSE(off.wait(f));  // ended: returns at once
}

TEST(Capture, AFifoWaitsForAWriterAndForTheNextOneOrEndsWhenAskedTo) {
  TempDir tmp;
  const fs::path fifo = tmp / "camera.fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  const std::string clip = shared_path("samples/video/webcam-mask-on-off.mp4").string();
  const auto write_one_second = [&] {
    return BackgroundProcess({"/usr/bin/ffmpeg", "-v", "error", "-y", "-t", "1", "-i", clip, "-c", "copy", "-bsf:v",
                              "dump_extra", "-f", "mpegts", fifo.string()});
  };
  for (const bool reopen : {true, false}) {
    SCOPED_TRACE(reopen ? "serve: waits for the next writer" : "run: ends with the writer");
    Statuses statuses;
    CaptureOptions o;
    o.reopen_fifo = reopen;
    o.on_status = [&](CameraStatus s, const std::string& d) { statuses.add(s, d); };
    auto capture = std::make_unique<Capture>(fifo.string(), o);
    capture->start(/*open_here=*/true);  // a FIFO is opened by the capture thread: no block here
    ASSERT_TRUE(wait_until([&] { return capture->status_detail().find("waiting for a writer") != std::string::npos; }, 5));
    EXPECT_EQ(capture->status(), CameraStatus::Starting);
    auto writer = write_one_second();
    SourceFrame f;
    ASSERT_TRUE(capture->wait(f)) << capture->failure();
    EXPECT_EQ(f.image.cols, 1280);  // the clip
    EXPECT_EQ(writer.wait(20), 0) << writer.err();
    if (reopen) {
      ASSERT_TRUE(wait_until([&] { return capture->status_detail().find("waiting for a writer") != std::string::npos &&
                                          capture->status() == CameraStatus::Offline; }, 10))
          << capture->status_detail();
      ASSERT_TRUE(statuses.wait_for(2));
      EXPECT_EQ(statuses.get()[1].second, "the FIFO's writer closed it");
      // Stopping while it waits in open(2) for the next writer takes well under a second.
      const auto t0 = Capture::Clock::now();
      capture.reset();
      EXPECT_LT(std::chrono::duration<double>(Capture::Clock::now() - t0).count(), 0.4);  // 0.5: left behind
      const size_t before = statuses.get().size();
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      EXPECT_EQ(statuses.get().size(), before);  // no callback after destruction
    } else {
      while (capture->wait(f)) {}
      EXPECT_EQ(capture->failure(), fifo.string() + ": the FIFO's writer closed it");
    }
  }
}
