#include "app/run_keys.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "media/save_png.h"

namespace maskwatch::app {
namespace {

// The message for a key whose file could not be written, said in the log as well.
std::string failed(const char* what, const std::exception& e) {
  spdlog::warn("{} failed: {}", what, e.what());
  return fmt::format("{} failed: {}", what, e.what());
}

}  // namespace

std::string snapshot_key(const std::filesystem::path& dir, const std::string& stamp, int64_t frame,
                         const cv::Mat& annotated) {
  if (annotated.empty()) return "no frame to save yet";
  const auto path = dir / fmt::format("maskwatch-{}-{}.png", stamp, frame);
  try {
    save_png(path, annotated);
  } catch (const std::exception& e) {
    return failed("snapshot", e);
  }
  return "snapshot " + path.string();
}

int finish_recording(std::unique_ptr<VideoRecorder>& recorder, std::vector<std::string>& recordings) {
  const std::unique_ptr<VideoRecorder> stopping = std::move(recorder);
  stopping->close();
  if (stopping->frames() > 0) recordings.push_back(stopping->path().string());
  return stopping->frames();
}

RecordKeyResult record_key(std::unique_ptr<VideoRecorder>& recorder, const std::filesystem::path& dir,
                           const std::string& stamp, double fps, std::vector<std::string>& recordings) {
  if (recorder) {
    const std::string path = recorder->path().string();
    int frames = 0;
    try {
      frames = finish_recording(recorder, recordings);
    } catch (const std::exception& e) {
      return {failed("recording", e), e.what()};
    }
    if (frames == 0) return {"recording stopped before its first frame: no file", ""};
    return {fmt::format("saved {} ({} frames)", path, frames), ""};
  }
  const auto path = dir / fmt::format("maskwatch-{}.mp4", stamp);
  try {
    recorder = std::make_unique<VideoRecorder>(path, fps);
  } catch (const std::exception& e) {
    return {failed("recording", e), ""};
  }
  return {"recording " + path.string(), ""};
}

}  // namespace maskwatch::app
