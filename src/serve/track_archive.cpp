#include "serve/track_archive.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "media/image_codec.h"
#include "util/files.h"
#include "vision/events.h"

namespace maskwatch {

FaceEnded archive_track(const std::string& camera, TrackEnded t, const std::vector<std::string>& classes,
                        FacePrivacy privacy, const std::filesystem::path& snapshot_dir, HistoryWriter& history,
                        const std::string& clip) {
  TrackEvent e;
  e.camera = camera;
  e.track_id = t.track_id;
  e.start = t.start_time;
  e.end = t.end_time;
  e.label = verdict_name(t.verdict, classes);
  e.score = t.top_score;
  e.x1 = t.box.x;
  e.y1 = t.box.y;
  e.x2 = t.box.x + t.box.width;
  e.y2 = t.box.y + t.box.height;
  e.zone = t.zone;
  e.clip = clip;
  if (!t.snapshot.empty()) {
    // The snapshot is the face box grown by the crop margin: blurred, all of it is the face.
    const cv::Rect2f all(0, 0, static_cast<float>(t.snapshot.cols), static_cast<float>(t.snapshot.rows));
    hide_faces(t.snapshot, {all}, 0, privacy);
    e.snapshot = fmt::format("{:.0f}-{}-{}.jpg", t.start_time * 1000, camera, t.track_id);
    try {
      const auto bytes = encode_jpeg(t.snapshot, 90);
      write_file_atomic(snapshot_dir / e.snapshot, bytes.data(), bytes.size());
    } catch (const std::exception& ex) {
      spdlog::error("snapshot {}: {}", e.snapshot, ex.what());
      e.snapshot.clear();
    }
    t.snapshot.release();  // events are shared by every reader: no pixels in them
  }
  const int64_t id = history.add_track(e);
  const std::string url = e.snapshot.empty() || id == 0 ? "" : fmt::format("/api/events/{}/snapshot.jpg", id);
  FaceEnded ended{camera, std::move(t), id, url, ""};
  if (!clip.empty() && id != 0) ended.clip_url = fmt::format("/api/events/{}/clip.mp4", id);
  return ended;
}

}  // namespace maskwatch
