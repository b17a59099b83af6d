// What `run`'s keys c and v do to files: a snapshot of the annotated frame, a recording
// started or stopped. A key's failure (a folder that cannot be written, a full disk) is a
// message on the overlay and a warning, never the end of the run: the events, the summary and
// the recording already under way are work the user keeps.
#pragma once
#include <filesystem>
#include <memory>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "vision/recorder.h"

namespace maskwatch::app {

// c: saves `annotated` as dir/maskwatch-STAMP-FRAME.png. Returns the overlay's message.
std::string snapshot_key(const std::filesystem::path& dir, const std::string& stamp, int64_t frame,
                         const cv::Mat& annotated);

// Finishes the recording (`recorder` is empty afterwards) and lists its file in `recordings`
// when it has a frame (no frame, no file). Returns its frames; throws when it cannot be finished.
int finish_recording(std::unique_ptr<VideoRecorder>& recorder, std::vector<std::string>& recordings);

// What v did: the overlay's message, and why a recording under way could not be finished
// (empty when it could). Such a loss fails the run at its end, as a recording that breaks
// mid-run does; a recording that cannot start loses nothing and is a message only.
struct RecordKeyResult {
  std::string message;
  std::string lost;
};

// v: stops the recording under way (its file is added to `recordings`), or starts one as
// dir/maskwatch-STAMP.mp4 at `fps`.
RecordKeyResult record_key(std::unique_ptr<VideoRecorder>& recorder, const std::filesystem::path& dir,
                           const std::string& stamp, double fps, std::vector<std::string>& recordings);

}  // namespace maskwatch::app
