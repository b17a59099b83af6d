// Event clips of `serve` (config `clips:`): each camera that an alert rule with a picture
// watches keeps its last seconds of processed frames in a ring (a few per second, scaled
// down, faces hidden as the camera's privacy mode says and then boxed with their verdicts as
// the live view shows them, JPEG-compressed: ~1 MB per camera),
// and an alert asks for a clip from `before_s` before to `after_s` after it. Once that time
// has passed, the clip is written as an H.264 MP4 (what browsers play) under the storage's
// clips/ folder, atomically (a hidden temporary file renamed), by a thread of its own: the
// inference workers only hand over a reference to the frame; one thread keeps frames, another
// writes clips, so a clip being encoded never makes the rings miss frames.
// A frame in which nothing moved (the motion gate skipped the detector) reuses the previous
// picture: an idle camera encodes nothing. Stopping writes the clips still waiting with the
// frames they have.
#pragma once
#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <opencv2/core.hpp>
#include <string>
#include <thread>
#include <vector>

#include "serve/config.h"
#include "util/stopwatch.h"
#include "vision/privacy.h"
#include "vision/tracker.h"

namespace maskwatch {

class ClipRecorder {
 public:
  // Removes temporary files an interrupted run left in `dir` (created when missing).
  // `classes` name the verdicts of the faces drawn; `on_lost` hears of each clip asked for
  // that will not be there (no frames, a write error, not written in time at the stop), so
  // that its event stops pointing at it; `clock` gives the time of frames and requests (unix
  // seconds; tests give their own).
  ClipRecorder(const ClipConfig& config, std::filesystem::path dir, std::vector<std::string> classes,
               std::function<void(const std::string& file)> on_lost = {}, std::function<double()> clock = unix_now);
  ~ClipRecorder();  // stop()
  ClipRecorder(const ClipRecorder&) = delete;
  ClipRecorder& operator=(const ClipRecorder&) = delete;

  void start();
  // Writes the clips still waiting with the frames they have, for at most `budget_s` (a
  // service stop must end well within systemd's time-out); the rest are lost (on_lost).
  void stop(double budget_s = 8);

  // Worker thread, for each processed frame of a camera that keeps clips: `fps` frames a
  // second are taken (on a grid, so that fps_limit = fps keeps every frame) as a reference
  // to `frame`, which must not be changed afterwards. `hidden`: every face box to hide;
  // `shown`: the faces with their verdicts, drawn. `still`: nothing moved since the previous
  // frame; its picture is kept again.
  void offer(const std::string& camera, double time, const cv::Mat& frame, const std::vector<cv::Rect2f>& hidden,
             const std::vector<TrackedFace>& shown, double margin, FacePrivacy privacy, bool still);
  // Asks for a clip of `camera` around `time`, written as dir/`file` (.mp4) when
  // time + after_s has passed (the same file asked twice is one clip). False when the
  // recorder is not running or already has kMaxClips clips waiting.
  bool request(const std::string& camera, double time, const std::string& file);
  // Whether `file` is asked for and not written (or lost) yet.
  bool pending(const std::string& file) const;
  // The camera is removed or replaced (a reload): its frames are dropped at once, also those
  // handed over and not yet kept (its successor may hide faces otherwise); the clips asked
  // for it are written now with the frames there were.
  void forget(const std::string& camera);

  int64_t written() const { return written_; }
  int64_t failed() const { return failed_; }
  int64_t frames_dropped() const { return dropped_; }  // not taken: the encoder was behind
  // Where the recorder's time goes: frames kept (scaled, hidden, drawn, JPEG) and clips written.
  int64_t frames_kept() const { return kept_; }
  // Frames handed over and not yet through the keeper (kept, passed over, or dropped by a
  // stop): what stop() would drop now. Tests hand the next frame over once it is 0, as a fast
  // keeper would let them.
  int64_t offers_waiting() const { return offered_ - handled_; }
  double frame_ms_total() const { return frame_us_ / 1000.0; }
  double clip_ms_total() const { return clip_us_ / 1000.0; }
  // A clip's name: <unix ms>-<camera>-<what>.mp4 (sorts by time like the snapshots; the time
  // is the one the clip is around), and that time back from a name.
  static std::string file_name(double time, const std::string& camera, const std::string& what);
  static double time_of(const std::string& file);
  static constexpr size_t kMaxClips = 32;  // asked for and not written yet

 private:
  struct Shot {
    double time = 0;
    std::shared_ptr<const std::vector<uchar>> jpeg;
  };
  struct Ring {
    std::deque<Shot> shots;
    double next_time = 0;  // the grid: the next frame taken is due at this time
  };
  struct Offer {
    std::string camera;
    uint64_t generation = 0;  // of its camera's name when offered (forget() moves it on)
    double time = 0;
    cv::Mat frame;
    std::vector<cv::Rect2f> hidden;
    std::vector<TrackedFace> shown;
    double margin = 0;
    FacePrivacy privacy = FacePrivacy::Blurred;
    bool still = false;
  };
  struct Request {
    std::string camera, file;
    double time = 0;
  };
  struct Job {  // a clip to write, with its frames
    Request request;
    std::vector<Shot> shots;
  };
  void intake_loop();  // offers into rings; due requests into jobs
  void writer_loop();  // jobs into files
  void take(Offer& o);
  void schedule_due_locked(double now, bool all);
  Job job_locked(Request r, const Ring* ring) const;
  void prune_locked(double now);
  bool write(const Job& job);  // false: logged, nothing left behind
  void lost(const std::string& file);

  const ClipConfig config_;
  const std::filesystem::path dir_;
  const std::vector<std::string> classes_;
  const std::function<void(const std::string&)> on_lost_;
  const std::function<double()> clock_;
  mutable std::mutex mutex_;
  std::condition_variable intake_wake_, writer_wake_;
  std::map<std::string, Ring> rings_;
  std::map<std::string, uint64_t> generations_;  // by camera name
  std::deque<Offer> offers_;
  std::vector<Request> requests_;  // waiting for their `after`
  std::deque<Job> jobs_;           // due, for the writer
  std::set<std::string> writing_;  // the file the writer is on
  std::atomic<int64_t> written_{0}, failed_{0}, dropped_{0}, kept_{0}, frame_us_{0}, clip_us_{0};
  std::atomic<int64_t> offered_{0}, handled_{0};
  bool started_ = false, stop_ = false, intake_done_ = false;
  double write_deadline_ = 0;  // steady seconds; 0 = none (set by stop)
  std::thread intake_, writer_;
};

}  // namespace maskwatch
