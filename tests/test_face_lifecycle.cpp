// The face lifecycle `run` and `serve` share (vision/track_ledger.h) and the one unmasked rule
// (vision/unmasked_rule.h), driven by hand-made frames on a fake clock: no model, no camera.
#include <gtest/gtest.h>

#include "serve/live_event.h"
#include "vision/events.h"
#include "vision/track_ledger.h"
#include "vision/unmasked_rule.h"

using namespace maskwatch;

namespace {

constexpr int kWith = 0, kWithout = 1;
const std::vector<std::string> kClasses = {"with_mask", "without_mask"};

TrackedFace face(int id, int verdict, float face_score = 0.9f, float confidence = 0.8f) {
  TrackedFace f;
  f.track_id = id;
  f.box = cv::Rect2f(10.f * id, 20, 40, 40);
  f.face_score = face_score;
  f.verdict = verdict;
  f.confidence = confidence;
  return f;
}

FrameResult frame(double t, std::vector<TrackedFace> faces, std::vector<VerdictChange> changes = {},
                  std::vector<int> ended = {}) {
  FrameResult r;
  r.time_s = t;
  r.faces = std::move(faces);
  r.changes = std::move(changes);
  r.ended = std::move(ended);
  return r;
}

VerdictChanged verdict(int track, int to, double t) {
  VerdictChanged v;
  v.track_id = track;
  v.to = to;
  v.time = t;
  return v;
}

}  // namespace

TEST(TrackLedger, NewUpdateAndEndWithTheVerdictShownLongest) {
  TrackLedger ledger;
  const cv::Mat img(100, 200, CV_8UC3, cv::Scalar::all(0));
  // t=0: the face appears, uncertain; its first verdict is news at once ("new").
  auto r = frame(0, {face(1, kUncertain)});
  auto u = ledger.observe(r, img, 100.0);
  ASSERT_EQ(u.verdicts.size(), 1u);
  EXPECT_TRUE(u.verdicts[0].is_new);
  EXPECT_EQ(u.verdicts[0].to, kUncertain);
  EXPECT_EQ(u.verdicts[0].start_time, 100.0);
  // Three frames without a mask (the tracker's change comes with the first), then one with.
  r = frame(0.1, {face(1, kWithout)}, {{1, kUncertain, kWithout, 0.8f, false}});
  u = ledger.observe(r, img, 100.1);
  ASSERT_EQ(u.verdicts.size(), 1u);
  EXPECT_FALSE(u.verdicts[0].is_new);
  EXPECT_EQ(u.verdicts[0].from, kUncertain);
  EXPECT_EQ(u.verdicts[0].to, kWithout);
  EXPECT_EQ(u.verdicts[0].start_time, 100.0);
  EXPECT_EQ(u.verdicts[0].time, 100.1);
  r = frame(0.2, {face(1, kWithout, 0.9f, 0.95f)});
  EXPECT_TRUE(ledger.observe(r, img, 100.2).verdicts.empty());  // no change: no news
  r = frame(0.3, {face(1, kWithout)});
  ledger.observe(r, img, 100.3);
  r = frame(0.4, {face(1, kWith, 0.9f, 0.99f)}, {{1, kWithout, kWith, 0.7f, false}});
  EXPECT_EQ(ledger.observe(r, img, 100.4).verdicts.size(), 1u);
  EXPECT_EQ(ledger.in_view(), (std::map<int, int>{{kWithout, 1}}));
  // The tracker lets it go: it ends with the verdict of 3 frames, not the last one.
  r = frame(1.0, {}, {}, {1});
  u = ledger.observe(r, img, 101.0);
  ASSERT_EQ(u.ended.size(), 1u);
  EXPECT_EQ(u.ended[0].track_id, 1);
  EXPECT_EQ(u.ended[0].verdict, kWithout);
  // The score of the label it ends with, not the 0.99 of the one frame with a mask: "without_mask
  // 0.99" read as that sure of the wrong thing (review of 2026-12-05).
  EXPECT_FLOAT_EQ(u.ended[0].top_score, 0.95f);
  EXPECT_EQ(u.ended[0].start_time, 100.0);
  EXPECT_EQ(u.ended[0].end_time, 100.4);  // last shown, not when the tracker gave up
  EXPECT_TRUE(u.ended[0].snapshot.empty());  // no snapshots asked for
  EXPECT_EQ(ledger.open_tracks(), 0u);
  // An id the ledger never showed (below the threshold all along) ends silently.
  r = frame(1.1, {}, {}, {7});
  EXPECT_TRUE(ledger.observe(r, img, 101.1).ended.empty());
}

// The bug that shaped this: faces under a camera's own threshold must not publish verdict
// changes (events with no box and never an `end`), and a track is news when it first shows.
TEST(TrackLedger, FacesUnderTheThresholdAreDroppedAndBringNoNews) {
  LedgerOptions o;
  o.min_face_score = 0.8f;
  o.snapshots = true;
  TrackLedger ledger(o);
  cv::Mat img(100, 200, CV_8UC3, cv::Scalar(0, 0, 255));
  auto r = frame(0, {face(1, kWithout, 0.5f), face(2, kWith, 0.95f)}, {{1, kUncertain, kWithout, 0.8f, true}});
  auto u = ledger.observe(r, img, 10);
  ASSERT_EQ(r.faces.size(), 1u);  // the weak face is not shown
  EXPECT_EQ(r.faces[0].track_id, 2);
  ASSERT_EQ(u.verdicts.size(), 1u);
  EXPECT_EQ(u.verdicts[0].track_id, 2);
  // Track 1 passes the threshold later: its "new" carries the verdict it has now.
  r = frame(0.1, {face(1, kWithout, 0.85f), face(2, kWith, 0.97f)});
  u = ledger.observe(r, img, 10.1);
  ASSERT_EQ(u.verdicts.size(), 1u);
  EXPECT_TRUE(u.verdicts[0].is_new);
  EXPECT_EQ(u.verdicts[0].track_id, 1);
  EXPECT_EQ(u.verdicts[0].to, kWithout);
  EXPECT_EQ(u.verdicts[0].start_time, 10.1);
  EXPECT_EQ(ledger.in_view(), (std::map<int, int>{{kWith, 1}, {kWithout, 1}}));
  // Everything ends at once (shutdown): each with a snapshot of its best face.
  const auto ended = ledger.end_all();
  ASSERT_EQ(ended.size(), 2u);
  for (const auto& e : ended) {
    EXPECT_FALSE(e.snapshot.empty()) << e.track_id;
    EXPECT_EQ(e.snapshot.at<cv::Vec3b>(e.snapshot.rows / 2, e.snapshot.cols / 2), cv::Vec3b(0, 0, 255));
  }
  EXPECT_EQ(ledger.open_tracks(), 0u);
}

// A face that sinks under the camera's threshold while the tracker still follows it: what
// changed meanwhile is news when it shows again, and hidden for longer than max_missed_s it
// ends, as an unseen track does (no stale verdict held open for an alert to fire on).
TEST(TrackLedger, AFaceHiddenUnderTheThresholdReportsItsChangeOrEnds) {
  LedgerOptions o;
  o.min_face_score = 0.8f;
  TrackLedger ledger(o);
  const cv::Mat img(100, 200, CV_8UC3, cv::Scalar::all(0));
  auto r = frame(0, {face(1, kWithout)});
  ASSERT_EQ(ledger.observe(r, img, 0).verdicts.size(), 1u);
  r = frame(0.2, {face(1, kWith, 0.6f)}, {{1, kWithout, kWith, 0.9f, false}});  // hidden: no news
  auto u = ledger.observe(r, img, 0.2);
  EXPECT_TRUE(u.verdicts.empty());
  EXPECT_TRUE(u.ended.empty());
  r = frame(0.4, {face(1, kWith, 0.9f)});  // shown again: the change it made while hidden
  u = ledger.observe(r, img, 0.4);
  ASSERT_EQ(u.verdicts.size(), 1u);
  EXPECT_FALSE(u.verdicts[0].is_new);
  EXPECT_EQ(u.verdicts[0].from, kWithout);
  EXPECT_EQ(u.verdicts[0].to, kWith);
  r = frame(0.8, {face(1, kWithout, 0.6f)});
  EXPECT_TRUE(ledger.observe(r, img, 0.8).ended.empty());  // hidden 0.4 s: still in view
  r = frame(0.95, {face(1, kWithout, 0.6f)});
  u = ledger.observe(r, img, 0.95);  // hidden 0.55 s > max_missed_s 0.5: ended
  ASSERT_EQ(u.ended.size(), 1u);
  EXPECT_EQ(u.ended[0].end_time, 0.4);
  EXPECT_EQ(ledger.open_tracks(), 0u);
  // Shown again later, the same tracker id opens a new episode: "new", then its own "end".
  r = frame(1.2, {face(1, kWithout, 0.9f)});
  u = ledger.observe(r, img, 1.2);
  ASSERT_EQ(u.verdicts.size(), 1u);
  EXPECT_TRUE(u.verdicts[0].is_new);
}

// A person who takes the mask off for a while counts as unmasked, even if the mask was on
// longer: serve's unmasked_face alert fired for them while compliance counted them masked
// (review of 2026-12-05). A brief misjudged moment (under unmasked_counts_after_s) does not.
TEST(TrackLedger, AFaceUnmaskedForASecondOrMoreCountsAsUnmasked) {
  LedgerOptions o;
  o.mask_class = kWith;
  o.max_missed_s = 0.5;
  const cv::Mat img(100, 200, CV_8UC3, cv::Scalar::all(0));
  // 10 fps: `masked` frames with the mask, then `bare` frames without, then the mask again.
  const auto play = [&](int masked, int bare) {
    TrackLedger ledger(o);
    double t = 0;
    for (int i = 0; i < masked; ++i, t += 0.1) {
      auto r = frame(t, {face(1, kWith)});
      ledger.observe(r, img, t);
    }
    for (int i = 0; i < bare; ++i, t += 0.1) {
      auto r = frame(t, {face(1, kWithout, 0.9f, 0.7f + 0.01f * i)});
      ledger.observe(r, img, t);
    }
    for (int i = 0; i < masked; ++i, t += 0.1) {
      auto r = frame(t, {face(1, kWith)});
      ledger.observe(r, img, t);
    }
    const auto in_view = ledger.in_view();
    auto ended = ledger.end_all();
    EXPECT_EQ(ended.size(), 1u);
    EXPECT_EQ(in_view, (std::map<int, int>{{ended.at(0).verdict, 1}}));  // one rule for both
    return ended.at(0);
  };
  // 3 s masked, 1.5 s bare (15 frames: 1.5 s of frame time credited), 3 s masked.
  TrackEnded e = play(30, 15);
  EXPECT_EQ(e.verdict, kWithout);
  EXPECT_NEAR(e.unmasked_s, 1.5, 1e-6);
  EXPECT_FLOAT_EQ(e.top_score, 0.84f);  // the best score of the verdict it ends with
  // 0.5 s bare: a moment, not a person without a mask; it counts by the longest verdict.
  e = play(30, 5);
  EXPECT_EQ(e.verdict, kWith);
  EXPECT_NEAR(e.unmasked_s, 0.5, 1e-6);
  // Exactly at the limit (10 frames, 1.0 s): unmasked.
  EXPECT_EQ(play(30, 10).verdict, kWithout);
  // Without a known mask class the old rule (longest) holds.
  o.mask_class = -1;
  EXPECT_EQ(play(30, 15).verdict, kWith);
  // The pure function: uncertain frames never count, and a track never unmasked keeps its verdict.
  EXPECT_EQ(counted_verdict({{kUncertain, 50}, {kWith, 3}}, 0, kWith, 0), kWith);
  EXPECT_EQ(counted_verdict({{kUncertain, 50}}, 0, kWith, 1), kUncertain);
  // Of the classes without a mask, the one shown longest.
  EXPECT_EQ(counted_verdict({{kWith, 50}, {kWithout, 2}, {2, 3}}, 1.2, kWith, 1), 2);
}

TEST(Zones, IncludeZonesNameTheFaceExcludeZonesDropIt) {
  // A 100 x 100 frame: an include zone on the left half, an exclude square inside it.
  const std::vector<Zone> zones = {{"left", true, {{0, 0}, {0.5f, 0}, {0.5f, 1}, {0, 1}}},
                                   {"poster", false, {{0.1f, 0.1f}, {0.3f, 0.1f}, {0.3f, 0.3f}, {0.1f, 0.3f}}}};
  const cv::Size size(100, 100);
  const auto at = [&](float cx, float cy) { return place_face(zones, cv::Rect2f(cx - 5, cy - 5, 10, 10), size); };
  EXPECT_TRUE(at(40, 60).counts);
  EXPECT_EQ(at(40, 60).zone, "left");
  EXPECT_FALSE(at(20, 20).counts);  // on the poster
  EXPECT_FALSE(at(80, 60).counts);  // outside every include zone
  EXPECT_TRUE(place_face({}, cv::Rect2f(80, 60, 10, 10), size).counts);  // no zones: everywhere
  // Only exclude zones: everywhere but there.
  EXPECT_TRUE(place_face({zones[1]}, cv::Rect2f(75, 55, 10, 10), size).counts);
  EXPECT_EQ(place_face({zones[1]}, cv::Rect2f(75, 55, 10, 10), size).zone, "");

  // The ledger shows only faces that count, and its events carry the zone entered by.
  LedgerOptions o;
  o.zones = zones;
  TrackLedger ledger(o);
  const cv::Mat picture(100, 100, CV_8UC3, cv::Scalar::all(0));
  TrackedFace in = face(1, kWithout), poster = face(2, kWithout), right = face(3, kWith);
  in.box = cv::Rect2f(35, 55, 10, 10);
  poster.box = cv::Rect2f(15, 15, 10, 10);
  right.box = cv::Rect2f(75, 55, 10, 10);
  auto r = frame(0.0, {in, poster, right});
  const auto u = ledger.observe(r, picture, 100.0);
  ASSERT_EQ(r.faces.size(), 1u);
  EXPECT_EQ(r.faces[0].track_id, 1);
  ASSERT_EQ(u.verdicts.size(), 1u);
  EXPECT_EQ(u.verdicts[0].zone, "left");
  EXPECT_EQ(verdict_json(u.verdicts[0], kClasses)["zone"], "left");
  const std::string left = "left", other = "door";
  EXPECT_EQ(ledger.in_view(&left), (std::map<int, int>{{kWithout, 1}}));
  EXPECT_TRUE(ledger.in_view(&other).empty());
  // Walking out of the zone, the face stops counting: not shown, and its track ends as an
  // unseen one does, with the zone it entered by.
  in.box = cv::Rect2f(75, 55, 10, 10);
  auto r2 = frame(0.1, {in});
  EXPECT_TRUE(ledger.observe(r2, picture, 100.1).verdicts.empty());
  EXPECT_TRUE(r2.faces.empty());
  auto r3 = frame(1.0, {in});
  const auto ended = ledger.observe(r3, picture, 101.0).ended;
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0].zone, "left");
  EXPECT_EQ(ended_json(ended[0], kClasses)["zone"], "left");
}

TEST(UnmaskedRule, DueOnceAfterTheLimitOnAFakeClock) {
  UnmaskedRule rule(5.0, kWith);
  rule.on_verdict("a", verdict(1, kWithout, 100));
  EXPECT_FALSE(rule.next_due(104.9));
  const auto due = rule.next_due(105.0);
  ASSERT_TRUE(due);
  EXPECT_EQ(due->camera, "a");
  EXPECT_EQ(due->track_id, 1);
  EXPECT_EQ(due->since, 100);
  EXPECT_FALSE(rule.next_due(200));  // once per episode
  // Uncertain does not end a fired episode: no second alert for the same face...
  rule.on_verdict("a", verdict(1, kUncertain, 201));
  rule.on_verdict("a", verdict(1, kWithout, 202));
  EXPECT_FALSE(rule.next_due(300));
  // ...putting the mask on does: the next unmasked stretch is a new episode.
  rule.on_verdict("a", verdict(1, kWith, 301));
  rule.on_verdict("a", verdict(1, kWithout, 310));
  EXPECT_FALSE(rule.next_due(314));
  EXPECT_TRUE(rule.next_due(315));
}

TEST(UnmaskedRule, UncertainRestartsAnEpisodeAndTheEndForgetsIt) {
  UnmaskedRule rule(2.0, kWith);
  rule.on_verdict("a", verdict(1, kWithout, 0));
  rule.on_verdict("a", verdict(1, kUncertain, 1.5));  // not known to be unmasked
  rule.on_verdict("a", verdict(1, kWithout, 1.6));
  EXPECT_FALSE(rule.next_due(3.0));  // 1.4 s since it was unmasked again
  EXPECT_TRUE(rule.next_due(3.6));
  // Cameras are apart; a face whose track ended is forgotten.
  rule.on_verdict("a", verdict(2, kWithout, 10));
  rule.on_verdict("b", verdict(2, kWithout, 10));
  rule.on_end("a", 2);
  EXPECT_FALSE(rule.next_due(20, "a"));
  const auto b = rule.next_due(20, "b");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->camera, "b");
  // A third class (e.g. a mask below the nose) is unmasked too, and moving between unmasked
  // classes does not restart the episode.
  UnmaskedRule three(2.0, kWith);
  three.on_verdict("c", verdict(5, 2, 0));
  three.on_verdict("c", verdict(5, kWithout, 1));
  EXPECT_TRUE(three.next_due(2.0));
}

TEST(LiveEvents, OneVocabularyForRunAndServe) {
  VerdictChanged v = verdict(3, kWithout, 12.5);
  v.is_new = true;
  v.start_time = 12.5;
  v.score = 0.75f;
  const auto j = to_json(LiveEvent{FaceVerdict{"door", v}}, kClasses);
  EXPECT_EQ(j["type"], "new");
  EXPECT_EQ(j["camera"], "door");
  EXPECT_EQ(j["label"], "without_mask");
  EXPECT_TRUE(j["from"].is_null());
  EXPECT_EQ(j["box"].size(), 4u);
  // `run --events` writes the same object, without the camera.
  auto run_line = verdict_json(v, kClasses);
  run_line["camera"] = "door";
  EXPECT_EQ(run_line, j);
  TrackEnded t;
  t.track_id = 3;
  t.verdict = kUncertain;
  const auto e = to_json(LiveEvent{FaceEnded{"door", t, 42, "/api/events/42/snapshot.jpg"}}, kClasses);
  EXPECT_EQ(e["type"], "end");
  EXPECT_EQ(e["label"], "uncertain");
  EXPECT_EQ(e["id"], 42);
  const auto s = to_json(LiveEvent{StatusChanged{"door", CameraStatus::Offline, "gone", 1.0}}, kClasses);
  EXPECT_EQ(s["status"], "offline");
  AlertFired a;
  a.rule = "r";
  a.track_id = 3;
  a.clip_url = "/api/events/7/clip.mp4";
  const auto al = to_json(LiveEvent{a}, kClasses);
  EXPECT_EQ(al["type"], "alert");
  EXPECT_EQ(al["track_id"], 3);
  EXPECT_EQ(al["clip_url"], "/api/events/7/clip.mp4");
  EXPECT_FALSE(al.contains("compliance"));
  // A viewer's live events offer no clip (admins only; the dashboard's button answered 403).
  EXPECT_FALSE(to_json(LiveEvent{a}, kClasses, ClipUrls::Hidden).contains("clip_url"));
  const auto ended_with_clip = LiveEvent{FaceEnded{"door", t, 42, "", "/api/events/42/clip.mp4"}};
  EXPECT_EQ(to_json(ended_with_clip, kClasses)["clip_url"], "/api/events/42/clip.mp4");
  EXPECT_FALSE(to_json(ended_with_clip, kClasses, ClipUrls::Hidden).contains("clip_url"));
}
