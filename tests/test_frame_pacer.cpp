// fps_limit pacing by capture time (serve/frame_pacer.h).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "serve/frame_pacer.h"
#include "util/bounded_queue.h"
#include "util/rate_meter.h"

namespace maskwatch {
namespace {

// Indices of the admitted frames of a `source_fps` source over `seconds`, capture times
// shifted by up to +-jitter_s (a fixed pattern).
std::vector<int> admitted(double limit, double source_fps, double seconds, double jitter_s = 0) {
  FramePacer pacer(limit);
  std::vector<int> kept;
  const int frames = static_cast<int>(std::lround(source_fps * seconds));
  for (int i = 0; i < frames; ++i) {
    const double wobble = jitter_s * std::sin(i * 2.3);
    if (pacer.admit(i / source_fps + wobble)) kept.push_back(i);
  }
  return kept;
}

TEST(FramePacer, AFifteenFpsSourceGivesTheLimitOnAverageEvenlySpaced) {
  for (const double limit : {5.0, 7.5, 10.0, 14.0}) {
    SCOPED_TRACE(limit);
    const auto kept = admitted(limit, 15, 30);
    // 30 s: limit x 30 frames (the first frame is free: +1 at most).
    EXPECT_NEAR(static_cast<double>(kept.size()), limit * 30, 1.0);
    // Evenly spread: no gap longer than the next whole number of source frames per kept one.
    const int max_gap = static_cast<int>(std::ceil(15 / limit - 1e-9));
    for (size_t k = 1; k < kept.size(); ++k) EXPECT_LE(kept[k] - kept[k - 1], max_gap) << "at frame " << kept[k];
  }
  // 10 of 15 keeps two in three: the old rule (1/limit since the last one) kept one in two.
  EXPECT_EQ(admitted(10, 15, 1), (std::vector<int>{0, 2, 3, 5, 6, 8, 9, 11, 12, 14}));
}

TEST(FramePacer, JitterDoesNotChangeTheRateAndNoLimitKeepsAll) {
  for (const double limit : {5.0, 10.0, 14.0}) {
    SCOPED_TRACE(limit);
    EXPECT_NEAR(static_cast<double>(admitted(limit, 15, 60, 0.004).size()), limit * 60, 2.0);
  }
  EXPECT_EQ(admitted(0, 15, 10).size(), 150u);
  EXPECT_EQ(admitted(30, 15, 10).size(), 150u);  // a limit above the source rate keeps every frame
}

TEST(FramePacer, AStallIsNotFollowedByABurst) {
  FramePacer pacer(10);
  int kept = 0;
  for (int i = 0; i < 15; ++i) kept += pacer.admit(i / 15.0);
  // Five seconds without frames, then 15 fps again: at most two frames of catch-up credit.
  int after = 0;
  for (int i = 0; i < 6; ++i) after += pacer.admit(6.0 + i / 15.0);
  EXPECT_LE(after, 5);  // 6 frames in 0.4 s at 10 fps is 4, plus the capped credit
  EXPECT_GE(after, 4);
}

}  // namespace
}  // namespace maskwatch

// The one rate estimator (capture, processing, run's overlay): what happened in the window.
TEST(RateMeter, CountsTheWindowAndFallsWhenEventsStop) {
  using maskwatch::RateMeter;
  using namespace std::chrono;
  RateMeter m(seconds(3));
  const auto t0 = RateMeter::Clock::time_point{} + hours(1);
  EXPECT_EQ(m.rate(t0), 0.0);
  // 10 of 15 fps by a pacer: gaps of 1 and 2 source frames (66.7 and 133.3 ms).
  auto t = t0;
  for (int i = 0; i < 40; ++i) {
    m.tick(t);
    t += milliseconds(i % 2 ? 133 : 67);
  }
  EXPECT_NEAR(m.rate(t - milliseconds(67)), 10.0, 0.4);
  // Early on: the spacing of the events so far (2 gaps needed).
  RateMeter early(seconds(3));
  early.tick(t0);
  early.tick(t0 + milliseconds(100));
  EXPECT_EQ(early.rate(t0 + milliseconds(100)), 0.0);
  early.tick(t0 + milliseconds(200));
  EXPECT_NEAR(early.rate(t0 + milliseconds(200)), 10.0, 1e-9);
  // Events stop: the rate falls to 0 within the window, instead of keeping its last value.
  EXPECT_NEAR(m.rate(t + milliseconds(1500)), 5.0, 0.5);
  EXPECT_EQ(m.rate(t + seconds(4)), 0.0);
  m.reset();
  m.tick(t + seconds(10));
  EXPECT_EQ(m.rate(t + seconds(10)), 0.0);
}

// The one drop-oldest rule of the queues that wait for a receiver (webhooks, MQTT, history).
TEST(BoundedQueue, KeepsTheNewestAndHandsBackTheOldest) {
  std::deque<int> q;
  for (int i = 1; i <= 3; ++i) EXPECT_FALSE(maskwatch::push_dropping_oldest(q, i, 3));
  const auto dropped = maskwatch::push_dropping_oldest(q, 4, 3);
  ASSERT_TRUE(dropped);
  EXPECT_EQ(*dropped, 1);
  EXPECT_EQ(q, (std::deque<int>{2, 3, 4}));
  std::deque<int> one;
  maskwatch::push_dropping_oldest(one, 1, 0);  // a capacity of 0 still holds the newest
  EXPECT_EQ(*maskwatch::push_dropping_oldest(one, 2, 0), 1);
  EXPECT_EQ(one, std::deque<int>{2});
}
