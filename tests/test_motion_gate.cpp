// Motion gating of the face detector (vision/motion_gate.h): still scenes with sensor noise
// do not need it, moving ones do, the detector runs every full_every_s anyway; and on the
// real webcam clip with a long empty stretch cut into it, every frame where the ungated
// pipeline finds a face has one with gating too, while the empty stretch goes without.
#include <gtest/gtest.h>

#include <opencv2/imgproc.hpp>

#include "media/video_reader.h"
#include "support.h"
#include "util/paths.h"
#include "vision/motion_gate.h"
#include "vision/pipeline.h"

using namespace maskwatch;
using namespace maskwatch::test;

namespace {

// A grey wall with a door frame and Gaussian sensor noise (sigma 6 grey levels per pixel).
cv::Mat noisy_wall(cv::RNG& rng) {
  cv::Mat img(480, 640, CV_8UC3, cv::Scalar(190, 195, 200));
  cv::rectangle(img, cv::Rect(400, 100, 120, 380), cv::Scalar(90, 80, 70), cv::FILLED);
  cv::Mat noise(img.size(), CV_16SC3);
  rng.fill(noise, cv::RNG::NORMAL, 0, 6);
  cv::Mat out;
  img.convertTo(out, CV_16SC3);
  out += noise;
  out.convertTo(out, CV_8UC3);
  return out;
}

}  // namespace

TEST(MotionGate, NoiseIsNotMotionAMovingHandIsAndTheDetectorStillRunsEveryFullPeriod) {
  cv::RNG rng(7);
  MotionGate gate;  // defaults: threshold 10, min_area 0.002, full every 2 s
  int detections = 0;
  for (int i = 0; i < 50; ++i) detections += gate.needs_detection(noisy_wall(rng), i * 0.1);
  // Frame 0 (first), then t = 2.0, 4.0: the full detections only.
  EXPECT_EQ(detections, 3);
  EXPECT_LT(gate.changed_share(), 0.002);
  // A hand-sized patch (60 x 60 px of 640 x 480) moves into view: motion at once.
  cv::Mat frame = noisy_wall(rng);
  cv::rectangle(frame, cv::Rect(100, 200, 60, 60), cv::Scalar(80, 110, 160), cv::FILLED);
  EXPECT_TRUE(gate.needs_detection(frame, 5.05));
  EXPECT_GT(gate.changed_share(), 0.008);
  // Slow drift adds up: a patch creeping 1 px per frame (less than the shrink's 8 px blocks)
  // is seen long before the next full detection, because frames are compared with the one
  // the detector last ran on, not with the one before.
  MotionGate slow;
  cv::RNG rng2(11);
  int first_motion = -1;
  for (int i = 0; i < 20 && first_motion < 0; ++i) {
    cv::Mat f = noisy_wall(rng2);
    cv::rectangle(f, cv::Rect(100 + i, 200, 60, 60), cv::Scalar(80, 110, 160), cv::FILLED);
    if (slow.needs_detection(f, i * 0.1) && i > 0) first_motion = i;
  }
  EXPECT_GT(first_motion, 0);
  EXPECT_LE(first_motion, 10);  // within a second, where the full detection comes at 2 s
  // A new frame size (a camera that reconnected at another resolution) is not a still scene.
  MotionGate sized;
  cv::RNG rng3(5);
  EXPECT_TRUE(sized.needs_detection(noisy_wall(rng3), 0.0));
  EXPECT_FALSE(sized.needs_detection(noisy_wall(rng3), 0.1));
  cv::Mat bigger;
  cv::resize(noisy_wall(rng3), bigger, cv::Size(1280, 960));
  EXPECT_TRUE(sized.needs_detection(bigger, 0.2));
  // Disabled: every frame.
  MotionOptions off;
  off.enabled = false;
  MotionGate all(off);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(all.needs_detection(noisy_wall(rng), i * 0.1));
}

TEST(MotionGate, TheClipWithAnEmptyStretchLosesNoFaceAndSkipsTheEmptyFrames) {
  // The real clip (78 frames at 15 fps, one person putting a mask on and taking it off) with
  // 45 frames (3 s) of an empty noisy wall cut in after frame 40.
  VideoReader in;
  ASSERT_TRUE(in.open(shared_path("samples/video/webcam-mask-on-off.mp4").string()));
  std::vector<cv::Mat> frames;
  for (cv::Mat f; in.read(f);) {
    cv::Mat small;
    cv::resize(f, small, cv::Size(640, 360), 0, 0, cv::INTER_AREA);
    frames.push_back(small);
  }
  ASSERT_EQ(frames.size(), 78u);
  cv::RNG rng(3);
  std::vector<cv::Mat> stretch;
  for (int i = 0; i < 45; ++i) {
    cv::Mat wall;
    cv::resize(noisy_wall(rng), wall, cv::Size(640, 360));
    stretch.push_back(wall);
  }
  frames.insert(frames.begin() + 41, stretch.begin(), stretch.end());

  MaskClassifier classifier(default_model_path());
  FaceDetector detector;
  Pipeline plain(classifier, detector), gated(classifier, detector);
  MotionGate gate;
  int found_plain = 0, found_gated = 0, lost = 0, skipped = 0, skipped_in_stretch = 0, other_verdict = 0;
  for (size_t i = 0; i < frames.size(); ++i) {
    const double t = static_cast<double>(i) / 15;
    const auto a = plain.process(frames[i], static_cast<int64_t>(i), t);
    const bool detect = gate.needs_detection(frames[i], t);
    const auto b = detect ? gated.process(frames[i], static_cast<int64_t>(i), t)
                          : gated.process_with_last_faces(frames[i], static_cast<int64_t>(i), t);
    found_plain += !a.faces.empty();
    found_gated += !b.faces.empty();
    lost += !a.faces.empty() && b.faces.empty();
    other_verdict += !a.faces.empty() && !b.faces.empty() && a.faces[0].verdict != b.faces[0].verdict;
    skipped += !detect;
    skipped_in_stretch += !detect && i >= 41 && i < 86;
  }
  EXPECT_EQ(found_plain, 78);  // the person in every clip frame, no face on the wall
  EXPECT_EQ(lost, 0);
  // The first wall frame is motion (the person vanishes), then one full detection at 2 s.
  EXPECT_GE(skipped_in_stretch, 42);
  // The person moves nearly all the time: few clip frames go without the detector (13 of 78
  // when written: hands still between two frames), and the verdicts stay those of the
  // ungated pipeline (the face keeps its box; its crop is classified on the new frame).
  EXPECT_LE(skipped - skipped_in_stretch, 20);
  EXPECT_EQ(other_verdict, 0) << other_verdict;
  // Faces kept from the last detection for a moment after the person left: at most a few.
  EXPECT_LE(found_gated - found_plain, 3);
  RecordProperty("skipped", skipped);
}
