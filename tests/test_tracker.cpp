#include <gtest/gtest.h>

#include <cmath>

#include "vision/classify_schedule.h"
#include "vision/crop.h"
#include "vision/overlay.h"
#include "vision/tracker.h"

using namespace maskwatch;

namespace {
Observation obs(float x, float y, float p_mask, float size = 100) {
  return {cv::Rect2f(x, y, size, size), 0.9f, {p_mask, 1 - p_mask}};
}
}  // namespace

TEST(Tracker, KeepsIdsForMovingFacesAndGivesNewOnesToNewFaces) {
  Tracker t;
  auto a = t.update({obs(100, 100, 0.9f), obs(400, 100, 0.1f)}, 0.0);
  ASSERT_EQ(a.size(), 2u);
  EXPECT_NE(a[0].track_id, a[1].track_id);
  // Both move a little, and come in the other order.
  auto b = t.update({obs(410, 105, 0.1f), obs(108, 96, 0.9f)}, 0.066);
  EXPECT_EQ(b[0].track_id, a[1].track_id);
  EXPECT_EQ(b[1].track_id, a[0].track_id);
  // A fast move (no overlap, but the centre moved less than half a box) keeps the id too.
  auto c = t.update({obs(160, 96, 0.9f)}, 0.133);
  EXPECT_EQ(c[0].track_id, a[0].track_id);
  // A face far away is someone new.
  auto d = t.update({obs(160, 96, 0.9f), obs(900, 500, 0.9f)}, 0.2);
  EXPECT_EQ(d[0].track_id, a[0].track_id);
  EXPECT_GT(d[1].track_id, a[1].track_id);
}

TEST(Tracker, ForgetsTracksThatAreGoneTooLong) {
  Tracker t;
  const int id = t.update({obs(100, 100, 0.9f)}, 0.0)[0].track_id;
  t.update({}, 0.3);
  EXPECT_EQ(t.update({obs(100, 100, 0.9f)}, 0.4)[0].track_id, id);  // gone 0.4 s: same person
  std::vector<int> ended;
  EXPECT_EQ(t.boxes().size(), 1u);  // missed in this frame, still followed: privacy hides its last box
  t.update({}, 0.9, nullptr, &ended);
  EXPECT_TRUE(ended.empty());  // gone 0.5 s: still followed (max_missed_s = 0.5)
  t.update({}, 1.0, nullptr, &ended);
  EXPECT_EQ(ended, std::vector<int>{id});  // the end of the track is reported, once
  ended.clear();
  EXPECT_NE(t.update({obs(100, 100, 0.9f)}, 1.5, nullptr, &ended)[0].track_id, id);  // gone 1.1 s: new track
  EXPECT_TRUE(ended.empty());
}

TEST(Tracker, AWeakFaceContinuesATrackButNeverStartsOne) {
  // The pipeline's rule: a box under the start score (may_start false) is a face only where
  // it continues a track (TrackerOptions::keep_score).
  Tracker t;
  const auto box = [](float x) { return cv::Rect2f(x, 100, 100, 100); };
  // A weak box alone starts nothing: not followed, no track.
  auto s0 = t.assign({box(100)}, 0.0, {false});
  ASSERT_EQ(s0.size(), 1u);
  EXPECT_FALSE(s0[0].followed);
  EXPECT_TRUE(t.commit({}, 0.0).empty());
  EXPECT_EQ(t.tracks_started(), 0);
  // A strong box starts a track; the next frame's weak box at the same place continues it,
  // while a weak box elsewhere is dropped.
  auto s1 = t.assign({box(100)}, 0.033, {true});
  ASSERT_TRUE(s1[0].followed);
  const int id = t.commit({{box(100), 0.7f, {0.9f, 0.1f}}}, 0.033)[0].track_id;
  auto s2 = t.assign({box(600), box(105)}, 0.066, {false, false});
  ASSERT_EQ(s2.size(), 2u);
  EXPECT_FALSE(s2[0].followed);
  EXPECT_TRUE(s2[1].followed);
  EXPECT_FALSE(s2[1].is_new());  // it knows the track's classification
  const auto kept = t.commit({{box(105), 0.45f, {}}}, 0.066);
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0].track_id, id);
  EXPECT_EQ(t.tracks_started(), 1);
  // A weak box around head and shoulders overlaps the track more than the face that moved:
  // the face keeps its track, and the weak box, continuing nothing, is dropped.
  auto s3 = t.assign({cv::Rect2f(85, 85, 160, 160), cv::Rect2f(150, 100, 100, 100)}, 0.1, {false, true});
  EXPECT_FALSE(s3[0].followed);
  EXPECT_TRUE(s3[1].followed);
  EXPECT_EQ(t.commit({{cv::Rect2f(150, 100, 100, 100), 0.8f, {}}}, 0.1)[0].track_id, id);
  EXPECT_EQ(t.tracks_started(), 1);
  // Without may_start every box may start a track, as before.
  EXPECT_EQ(t.assign({box(600)}, 0.133).size(), 1u);
  t.commit({{box(600), 0.9f, {}}}, 0.133);
  EXPECT_EQ(t.tracks_started(), 2);
  EXPECT_THROW(t.assign({box(600)}, 0.166, {true, false}), std::logic_error);
}

TEST(Tracker, SmoothingRemovesSingleFrameFlickers) {
  Tracker t;
  std::vector<VerdictChange> changes;
  double time = 0;
  for (int i = 0; i < 30; ++i, time += 1.0 / 15) {
    const float p = (i == 10 || i == 20) ? 0.02f : 0.97f;  // two one-frame misclassifications
    const auto f = t.update({obs(100, 100, p)}, time, &changes);
    EXPECT_EQ(f[0].verdict, 0) << "frame " << i;
  }
  ASSERT_EQ(changes.size(), 1u);  // only the first verdict
  EXPECT_TRUE(changes[0].first);
}

TEST(Tracker, ARealChangeShowsWithinHalfASecond) {
  for (double fps : {10.0, 15.0, 30.0, 60.0}) {
    Tracker t;
    double time = 0;
    for (int i = 0; i < 20; ++i, time += 1 / fps) t.update({obs(100, 100, 0.98f)}, time);
    const double change_at = time;
    double flipped_at = -1;
    for (int i = 0; i < 60 && flipped_at < 0; ++i, time += 1 / fps) {
      std::vector<VerdictChange> changes;
      const auto f = t.update({obs(100, 100, 0.03f)}, time, &changes);
      if (f[0].verdict == 1) flipped_at = time;
    }
    ASSERT_GE(flipped_at, 0) << fps;
    EXPECT_LE(flipped_at - change_at, 0.5) << fps << " fps";
    EXPECT_GT(flipped_at - change_at, 0.0) << fps << " fps";  // not on the very first frame
  }
}

TEST(Tracker, HysteresisHoldsTheVerdictAcrossTheMiddle) {
  Tracker t;
  double time = 0;
  for (int i = 0; i < 10; ++i, time += 0.066) t.update({obs(100, 100, 0.9f)}, time);
  // A few frames at 0.3 pull the smoothed "with" probability below 0.5 (an argmax would
  // flip), but "without" never reaches the 0.65 needed to take over.
  TrackedFace f;
  for (int i = 0; i < 4; ++i, time += 0.066) f = t.update({obs(100, 100, 0.3f)}, time)[0];
  EXPECT_LT(f.smoothed[0], 0.5f);
  EXPECT_GT(f.smoothed[1], 0.5f);
  EXPECT_LT(f.smoothed[1], 0.65f);
  EXPECT_EQ(f.verdict, 0);
}

TEST(Tracker, AFaceThatStaysNearHalfIsShownAsUncertain) {
  Tracker t;
  std::vector<VerdictChange> changes;
  double time = 0;
  int verdict = 99;
  for (int i = 0; i < 30; ++i, time += 0.066) verdict = t.update({obs(100, 100, 0.5f)}, time, &changes)[0].verdict;
  EXPECT_EQ(verdict, kUncertain);
  // From a confident start, sitting at 0.5 for long enough also ends uncertain.
  Tracker u;
  time = 0;
  for (int i = 0; i < 10; ++i, time += 0.066) u.update({obs(100, 100, 0.95f)}, time);
  std::vector<VerdictChange> ch;
  for (int i = 0; i < 30; ++i, time += 0.066) verdict = u.update({obs(100, 100, 0.5f)}, time, &ch)[0].verdict;
  EXPECT_EQ(verdict, kUncertain);
  ASSERT_EQ(ch.size(), 1u);
  EXPECT_EQ(ch[0].from, 0);
  EXPECT_EQ(ch[0].to, kUncertain);
}

TEST(Crop, SquareWithMarginCentredOnTheFace) {
  const cv::Rect r = square_crop(cv::Rect2f(300, 200, 100, 120), {1280, 720}, 0.5);
  EXPECT_EQ(r.width, 180);
  EXPECT_EQ(r.height, 180);
  EXPECT_EQ(r.x, 260);  // centre x 350
  EXPECT_EQ(r.y, 170);  // centre y 260
  const cv::Rect none = square_crop(cv::Rect2f(300, 200, 100, 120), {1280, 720}, 0.0);
  EXPECT_EQ(none.width, 120);
}

TEST(Crop, ClampedInsideTheFrameAtBorders) {
  const cv::Size frame(640, 480);
  for (const cv::Rect2f face :
       {cv::Rect2f(-20, -30, 100, 100), cv::Rect2f(600, 440, 60, 60), cv::Rect2f(0, 200, 80, 80)}) {
    const cv::Rect r = square_crop(face, frame, 0.5);
    EXPECT_GE(r.x, 0);
    EXPECT_GE(r.y, 0);
    EXPECT_LE(r.x + r.width, frame.width);
    EXPECT_LE(r.y + r.height, frame.height);
    EXPECT_EQ(r.width, r.height);
    EXPECT_EQ(r.width, static_cast<int>(std::lround(std::max(face.width, face.height) * 1.5)));
  }
  // A face bigger than the frame allows: the square shrinks to the frame's shorter side.
  const cv::Rect big = square_crop(cv::Rect2f(100, 0, 400, 470), frame, 0.5);
  EXPECT_EQ(big.width, 480);
  EXPECT_EQ(big.height, 480);
  EXPECT_GE(big.x, 0);
  EXPECT_LE(big.x + big.width, 640);
}

namespace {
// One frame of the real-time path without images: assign, schedule, classify the picked faces
// with `prob_of(face)` ("with mask" probability), commit. Returns the frame's faces.
template <class ProbOf>
std::vector<TrackedFace> scheduled_frame(Tracker& t, const std::vector<cv::Rect2f>& boxes, double now,
                                         const ClassifyScheduleOptions& o, ProbOf prob_of, int* classified,
                                         std::vector<VerdictChange>* changes = nullptr) {
  const auto pick = faces_to_classify(t.assign(boxes, now), now, o);
  std::vector<Observation> obs;
  for (size_t i = 0; i < boxes.size(); ++i) {
    obs.push_back({boxes[i], 0.9f, {}});
    if (pick[i]) {
      const float p = prob_of(i);
      obs.back().probs = {p, 1 - p};
      ++*classified;
    }
  }
  return t.commit(obs, now, changes);
}
}  // namespace

TEST(ClassifySchedule, SteadyFacesAreRefreshedOneAtATimeAndNeverLeftStale) {
  const ClassifyScheduleOptions o;  // refresh every 0.2 s
  Tracker t;
  const std::vector<cv::Rect2f> boxes = {
      {0, 0, 100, 100}, {200, 0, 100, 100}, {0, 200, 100, 100}, {200, 200, 100, 100}};
  std::vector<double> last(4, 0);
  int total = 0;
  const double fps = 30;
  for (int i = 0; i < 90; ++i) {
    const double now = i / fps;
    const auto pick = faces_to_classify(t.assign(boxes, now), now, o);
    std::vector<Observation> obs;
    int n = 0;
    for (size_t k = 0; k < 4; ++k) {
      obs.push_back({boxes[k], 0.9f, {}});
      if (pick[k]) obs.back().probs = {0.98f, 0.02f}, last[k] = now, ++n;
      EXPECT_LE(now - last[k], 2 * o.refresh_s + 1e-9) << "face " << k << " stale at frame " << i;
    }
    if (i == 0)
      EXPECT_EQ(n, 4);  // new faces: all at once
    else
      EXPECT_LE(n, 1) << "frame " << i;  // refreshes spread over frames
    total += n;
    const auto faces = t.commit(obs, now);
    for (const auto& f : faces) EXPECT_EQ(f.verdict, 0);
  }
  // 4 faces x 3 s / 0.2 s = 60 refreshes at most, against 360 classifications without the schedule.
  EXPECT_LE(total, 4 + 60);
  EXPECT_GE(total, 4 + 4 * 10);  // each face refreshed at least every 0.4 s
}

TEST(ClassifySchedule, ARealChangeStillShowsWithinHalfASecond) {
  for (double fps : {10.0, 15.0, 30.0, 60.0})
    for (double phase : {0.0, 0.05, 0.1, 0.15}) {  // where in the refresh cycle the mask comes off
      Tracker t;
      const ClassifyScheduleOptions o;
      const std::vector<cv::Rect2f> box = {{100, 100, 100, 100}};
      int classified = 0;
      double time = 0;
      const double change_at = 1.0 + phase;
      double flipped_at = -1;
      for (; time < change_at + 1.5 && flipped_at < 0; time += 1 / fps) {
        const float p = time < change_at ? 0.98f : 0.03f;
        const auto f = scheduled_frame(
            t, box, time, o, [&](size_t) { return p; }, &classified);
        if (time < change_at)
          ASSERT_EQ(f[0].verdict, 0) << fps;
        else if (f[0].verdict == 1)
          flipped_at = time;
      }
      ASSERT_GE(flipped_at, 0) << fps;
      EXPECT_LE(flipped_at - change_at, 0.5) << fps << " fps, phase " << phase;
      EXPECT_LT(classified, static_cast<int>(time * fps));  // and it did skip frames
    }
}

TEST(ClassifySchedule, NewUnsureAndMovingFacesAreClassifiedEveryFrame) {
  const ClassifyScheduleOptions o;
  TrackStatus steady;
  steady.classified_at = 1.0;
  steady.classified_box = steady.box_now = {100, 100, 100, 100};
  steady.raw = {0.97f, 0.03f};
  steady.verdict = 0;
  EXPECT_EQ(faces_to_classify({steady}, 1.05, o), std::vector<bool>{false});
  auto fresh = steady;
  fresh.raw.clear();  // never classified
  auto unsure = steady;
  unsure.raw = {0.8f, 0.2f};
  auto disagrees = steady;
  disagrees.raw = {0.05f, 0.95f};
  auto uncertain = steady;
  uncertain.verdict = kUncertain;
  auto moved = steady;
  moved.box_now = {150, 100, 100, 100};  // IoU 0.33
  for (const auto& s : {fresh, unsure, disagrees, uncertain, moved})
    EXPECT_EQ(faces_to_classify({s}, 1.05, o), std::vector<bool>{true});
  EXPECT_EQ(faces_to_classify({steady}, 1.25, o), std::vector<bool>{true});  // due for a refresh
  ClassifyScheduleOptions every_frame;
  every_frame.refresh_s = 0;
  EXPECT_EQ(faces_to_classify({steady}, 1.05, every_frame), std::vector<bool>{true});
}

TEST(Tracker, OneBadResultAfterAPauseDoesNotFlipTheVerdict) {
  // A track classified at 30 FPS, then only every 0.3 s (a long gap) gets one wrong result:
  // it counts as one frame of evidence, so the verdict holds.
  Tracker t;
  std::vector<VerdictChange> changes;
  double time = 0;
  for (int i = 0; i < 10; ++i, time += 1.0 / 30) t.update({obs(100, 100, 0.98f)}, time, &changes);
  for (int i = 0; i < 9; ++i, time += 1.0 / 30) t.update({{cv::Rect2f(100, 100, 100, 100), 0.9f, {}}}, time, &changes);
  const auto f = t.update({obs(100, 100, 0.02f)}, time, &changes);
  EXPECT_EQ(f[0].verdict, 0);
  EXPECT_FALSE(f[0].raw.empty());
  EXPECT_TRUE(f[0].classified);
  EXPECT_EQ(changes.size(), 1u);  // only the first verdict
}

TEST(Tracker, FramesTheQualityGateCannotJudgeNeverMakeOrKeepAVerdict) {
  TrackerOptions opts;
  Tracker t(opts);
  std::vector<VerdictChange> changes;
  auto f = t.update({obs(100, 100, 0.95f)}, 0.0, &changes);
  ASSERT_EQ(f[0].verdict, 0);  // masked at once
  // Dark, grainy frames: the classifier says "no mask" at 99 %, the gate does not trust it.
  auto unjudged = [](float p_mask) {
    Observation o = obs(100, 100, p_mask);
    o.answered = false;
    o.p_right = 0.4;
    return o;
  };
  double now = 0;
  for (int k = 1; k <= 8; ++k) {  // 0.53 s at 15 FPS: the average follows, the verdict cannot change
    now = k / 15.0;
    f = t.update({unjudged(0.01f)}, now, &changes);
    EXPECT_EQ(f[0].verdict, 0) << k;
    EXPECT_LT(f[0].smoothed[0], 0.95f * std::pow(0.65f, static_cast<float>(k)) + 0.02f) << k;
    EXPECT_FALSE(f[0].answered);
    EXPECT_DOUBLE_EQ(f[0].p_right, 0.4);
  }
  // uncertain_after_s (0.6 s) after the last confident frame: uncertain, never "without_mask".
  f = t.update({unjudged(0.01f)}, 9 / 15.0 + 0.01, &changes);
  EXPECT_EQ(f[0].verdict, kUncertain);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[1].from, 0);
  EXPECT_EQ(changes[1].to, kUncertain);
  EXPECT_NEAR(changes[1].confidence, f[0].smoothed[1], 1e-6);  // the unjudged frames' average, for what it is
  // A judged frame again: after an unjudged stretch long enough to turn uncertain, the average
  // starts afresh from it, as for a new face.
  f = t.update({obs(100, 100, 0.9f)}, 0.7, &changes);
  EXPECT_EQ(f[0].verdict, 0);
  EXPECT_NEAR(f[0].smoothed[0], 0.9f, 1e-6);
  EXPECT_TRUE(f[0].answered);
  // Answered frames of the other class move it as usual.
  for (int k = 1; k <= 6; ++k) f = t.update({obs(100, 100, 0.02f)}, 0.7 + k / 15.0, &changes);
  EXPECT_EQ(f[0].verdict, 1);
  // Masked for 1 s, then 10 s too dark to judge while the mask comes off, then light again
  // with no mask: uncertain, then straight to without_mask; the old mask verdict never returns.
  Tracker dark(opts);
  std::vector<VerdictChange> seen;
  double at = 0;
  for (int k = 0; k < 30; ++k, at += 1 / 30.0) dark.update({obs(100, 100, 0.97f)}, at, &seen);
  for (int k = 0; k < 300; ++k, at += 1 / 30.0) dark.update({unjudged(0.5f)}, at, &seen);
  for (int k = 0; k < 10; ++k, at += 1 / 30.0) f = dark.update({obs(100, 100, 0.03f)}, at, &seen);
  EXPECT_EQ(f[0].verdict, 1);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[1].to, kUncertain);
  EXPECT_EQ(seen[2].from, kUncertain);
  EXPECT_EQ(seen[2].to, 1);
  // A new face whose first frames cannot be judged stays uncertain: no verdict was ever guessed.
  Tracker fresh(opts);
  for (int k = 0; k < 12; ++k) EXPECT_EQ(fresh.update({unjudged(0.99f)}, k / 15.0)[0].verdict, kUncertain);
}

// The overlay on an 8000 px photo drew hairlines and text unreadable at screen size; an
// uncertain face said "uncertain 57%" without saying 57 % of what (review of 2026-12-05).
TEST(Overlay, BoxesScaleWithThePhotoAndUncertainSaysWhichClass) {
  for (const int width : {640, 6000}) {
    cv::Mat frame(width * 3 / 4, width, CV_8UC3, cv::Scalar(0, 0, 0));
    TrackedFace f;
    f.track_id = 1;
    f.box = cv::Rect2f(width * 0.4f, width * 0.3f, width * 0.2f, width * 0.2f);
    f.verdict = kUncertain;
    f.confidence = 0.57f;
    f.smoothed = {0.57f, 0.43f};
    draw_faces(frame, {f}, {"with_mask", "without_mask"}, false);
    // The box's left edge: how many columns are drawn at the middle of its height.
    const int y = static_cast<int>(f.box.y + f.box.height / 2);
    int lit = 0;
    for (int x = static_cast<int>(f.box.x) - 40; x < static_cast<int>(f.box.x) + 40; ++x)
      lit += frame.at<cv::Vec3b>(y, x) != cv::Vec3b(0, 0, 0);
    EXPECT_GE(lit, width / 400) << width;  // 15 px at 6000 (it was 6: a hairline there)
  }
  TrackedFace unsure;
  unsure.verdict = kUncertain;
  unsure.confidence = 0.57f;
  unsure.smoothed = {0.57f, 0.43f};
  EXPECT_EQ(face_label_text(unsure, {"with_mask", "without_mask"}), "uncertain with_mask? 57%");
  unsure.verdict = 1;
  unsure.confidence = 0.9f;
  EXPECT_EQ(face_label_text(unsure, {"with_mask", "without_mask"}), "without_mask 90%");
  // A three-class model's chin mask says what is wrong, in words (issue 24).
  const std::vector<std::string> three{"mask_worn_incorrectly", "with_mask", "without_mask"};
  unsure.verdict = 0;
  EXPECT_EQ(face_label_text(unsure, three), "mask below nose 90%");
  unsure.verdict = kUncertain;
  unsure.smoothed = {0.5f, 0.3f, 0.2f};
  EXPECT_EQ(face_label_text(unsure, three), "uncertain mask below nose? 90%");
}

// Faces side by side: each label on its own box's edge, none covering another (they overlapped
// and hid each other's verdicts, review of 2026-12-05), and all inside the frame.
TEST(Overlay, LabelsOfFacesCloseTogetherDoNotCoverEachOther) {
  const cv::Size frame(640, 480);
  const cv::Size label(180, 30);
  // Two faces 60 px apart with 180 px labels; a third right under the first's label; one at the top edge.
  const std::vector<cv::Rect> boxes = {{100, 200, 60, 60}, {160, 205, 60, 60}, {100, 140, 60, 30}, {400, 0, 80, 80}};
  const auto at = place_labels(boxes, std::vector<cv::Size>(boxes.size(), label), frame);
  ASSERT_EQ(at.size(), boxes.size());
  EXPECT_EQ(at[0], cv::Rect(100, 170, 180, 30));  // the first on its box's top edge
  EXPECT_EQ(at[1], cv::Rect(160, 265, 180, 30));  // the second would cover it: under its own box
  for (size_t i = 0; i < at.size(); ++i) {
    EXPECT_EQ(at[i].size(), label);
    EXPECT_EQ(at[i] & cv::Rect({0, 0}, frame), at[i]) << i;  // inside the frame
    for (size_t j = 0; j < i; ++j) EXPECT_EQ((at[i] & at[j]).area(), 0) << i << " covers " << j;
  }
  EXPECT_EQ(at[3].y, 0);  // no room above: clamped into the frame
  // The overlay draws them so: a red and a green label side by side both keep their colour.
  cv::Mat img(frame, CV_8UC3, cv::Scalar::all(0));
  TrackedFace a, b;
  a.track_id = 1, a.box = cv::Rect2f(100, 200, 60, 60), a.verdict = 0, a.confidence = 0.9f;
  b.track_id = 2, b.box = cv::Rect2f(160, 205, 60, 60), b.verdict = 1, b.confidence = 0.9f;
  draw_faces(img, {a, b}, {"with_mask", "without_mask"}, true);
  const auto colour_at = [&](int x, int y) { return img.at<cv::Vec3b>(y, x); };
  EXPECT_EQ(colour_at(102, 185), cv::Vec3b(60, 180, 40));  // green label above face 1 (its left margin)
  EXPECT_EQ(colour_at(162, 272), cv::Vec3b(40, 40, 220));  // red label below face 2
}
