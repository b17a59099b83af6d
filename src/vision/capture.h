// The one capture layer: a thread that reads a source as fast as it delivers and keeps only
// its newest frame, so whoever processes the frames never falls behind a camera. Used for
// `serve`'s cameras (any source) and for `run`'s live sources (cameras, streams, FIFOs; `run`
// reads files itself, frame by frame).
//
// The thread opens the source (open_reader), reads it, paces files and image folders at their
// own frame rate when asked (a file standing in for a camera), flips it when mirrored, and when
// a live source is lost reopens it with one backoff policy: 0.5 s, doubling up to
// backoff_max_s, back to 0.5 s after a frame. A file read to its end starts again with `loop`
// and is otherwise done (not reopened: that would show the same frames again and flap
// online/offline). It reports every status change (on_status, from the capture thread), counts
// frames captured and dropped (overwritten before they were taken) and measures the rate at
// which frames arrive (camera_fps).
//
// Its state lives in a shared block so that, if the thread is stuck inside FFmpeg or a FIFO's
// read(2) when the Capture is destroyed, it is left to finish on its own (reads time out)
// instead of holding up the exit; no callback is called once destruction began.
#pragma once
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "vision/source.h"

namespace maskwatch {

enum class CameraStatus { Starting, Online, Offline, Disabled };
const char* status_name(CameraStatus s);  // "starting", "online", "offline", "disabled"

struct CaptureOptions {
  // Resolution, time-outs, image folders' frame rate; reconnect_for_s: a live source ends
  // this long after its last frame (0 = never); cancel: wait() returns false soon after it is set.
  SourceOptions source;
  std::string name;             // log lines start with it ("camera door"); the source if empty
  bool pace = true;             // files and folders: deliver frames at their own rate
  bool loop = false;            // files and folders: start again at the end
  bool mirror = false;          // flip every frame left-right
  bool reopen_fifo = true;      // a FIFO whose writer left waits for the next one (false: the source ends)
  double backoff_max_s = 8;     // longest wait between reconnect attempts
  // Called from the capture thread, never after the Capture's destructor began; the detail
  // never holds a stream's password.
  std::function<void(CameraStatus status, const std::string& detail)> on_status;
  std::function<void()> on_frame;  // a new frame is in the slot (e.g. wake a worker)
};

class Capture {
 public:
  using Clock = std::chrono::steady_clock;
  Capture(std::string spec, CaptureOptions options);
  ~Capture();
  Capture(const Capture&) = delete;
  Capture& operator=(const Capture&) = delete;

  // Starts the capture thread. `open_here`: open the source in this thread first and throw
  // Error with the reason when it cannot be opened (`run`: a wrong URL is an error at once);
  // a FIFO is still opened by the capture thread (its open blocks until a writer comes).
  // A disabled camera is not started: call disable() instead.
  void start(bool open_here = false);
  void disable(const std::string& why);  // status Disabled, no thread

  // The newest frame not taken yet (its `captured` time set); false when there is none.
  bool take(SourceFrame& out);
  // Waits for the next frame; false once the source has ended for good or `cancel` is set.
  bool wait(SourceFrame& out);

  CameraStatus status() const;
  std::string status_detail() const;  // why the status is what it is (no password)
  std::string failure() const;        // why the source ended for good, when it was lost ("" otherwise)
  std::string description() const;   // of the source last opened ("" before)
  double fps() const;                 // its nominal frame rate (0 unknown)
  int64_t frames_captured() const;
  int64_t frames_dropped() const;
  double camera_fps() const;  // frames that arrived in the last few seconds, per second (0 unless online)

 private:
  struct State;
  std::shared_ptr<State> s_;
  std::thread thread_;  // joined when it ends within half a second of the destructor, else detached
};

// `open_source` for live specs: a FrameSource whose read() waits on a Capture (throws Error
// when the source cannot be opened; a FIFO is opened by the capture thread).
std::unique_ptr<FrameSource> open_live_source(const std::string& spec, const SourceOptions& options);

}  // namespace maskwatch
