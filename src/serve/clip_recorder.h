// Event clips of `serve` (config `clips:`): each camera that an alert rule with a picture
// watches keeps its last seconds of processed frames in a ring (a few per second, scaled
// down, faces hidden as the camera's privacy mode says and then boxed with their verdicts as
// the live view shows them, JPEG-compressed: ~1 MB per camera),
// and an alert asks for a clip from `before_s` before to `after_s` after it. Once that time
// has passed, the clip is written as an H.264 MP4 (what browsers play) under the storage's
// clips/ folder, atomically (a hidden temporary file renamed), by a thread of its own: the
// inference workers only hand over a reference to the frame.
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
  // `classes` name the verdicts of the faces drawn; `clock` gives the time of frames and
  // requests (unix seconds; tests give their own).
  ClipRecorder(const ClipConfig& config, std::filesystem::path dir, std::vector<std::string> classes,
               std::function<double()> clock = unix_now);
  ~ClipRecorder();  // stop()
  ClipRecorder(const ClipRecorder&) = delete;
  ClipRecorder& operator=(const ClipRecorder&) = delete;

  void start();
  void stop();  // writes the clips still waiting, with the frames they have

  // Worker thread, for each processed frame of a camera that keeps clips: at most `fps`
  // frames a second are taken (a reference to `frame`, which must not be changed afterwards).
  // `hidden`: every face box to hide; `shown`: the faces with their verdicts, drawn.
  // `still`: nothing moved since the previous frame; its picture is kept again.
  void offer(const std::string& camera, double time, const cv::Mat& frame, std::vector<cv::Rect2f> hidden,
             std::vector<TrackedFace> shown, double margin, FacePrivacy privacy, bool still);
  // Asks for a clip of `camera` around `time`, written as dir/`file` (.mp4) when
  // time + after_s has passed. False when the recorder is not running.
  bool request(const std::string& camera, double time, const std::string& file);
  // Whether `file` is asked for and not written yet.
  bool pending(const std::string& file) const;
  // Forgets a camera's frames (removed): clips asked for are written with what there is.
  void forget(const std::string& camera);

  int64_t written() const { return written_; }
  int64_t failed() const { return failed_; }
  int64_t frames_dropped() const { return dropped_; }  // not taken: the encoder was behind
  // Where the recorder's time goes: frames kept (scaled, hidden, drawn, JPEG) and clips written.
  int64_t frames_kept() const { return kept_; }
  double frame_ms_total() const { return frame_us_ / 1000.0; }
  double clip_ms_total() const { return clip_us_ / 1000.0; }
  const ClipConfig& config() const { return config_; }
  const std::filesystem::path& dir() const { return dir_; }

  // A clip's name: <unix ms>-<camera>-<what>.mp4 (sorts by time like the snapshots).
  static std::string file_name(double time, const std::string& camera, const std::string& what);

 private:
  struct Shot {
    double time = 0;
    std::shared_ptr<const std::vector<uchar>> jpeg;
  };
  struct Ring {
    std::deque<Shot> shots;
    double next_time = 0;  // the next frame taken is at or after this
    bool forgotten = false;
  };
  struct Offer {
    std::string camera;
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
  void loop();
  void take(Offer& o);                                        // recorder thread: into its camera's ring
  void write_due(double now, bool all);                       // recorder thread
  bool write(const Request& r, const std::vector<Shot>& shots);  // false: logged, nothing left behind
  void prune_locked(double now);

  const ClipConfig config_;
  const std::filesystem::path dir_;
  const std::vector<std::string> classes_;
  const std::function<double()> clock_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::map<std::string, Ring> rings_;
  std::deque<Offer> offers_;
  std::vector<Request> requests_;
  std::set<std::string> writing_;  // files of requests taken out of requests_, being written
  std::atomic<int64_t> written_{0}, failed_{0}, dropped_{0}, kept_{0}, frame_us_{0}, clip_us_{0};
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace maskwatch
