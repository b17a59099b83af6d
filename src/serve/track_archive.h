// What becomes of a face track that ended in `serve`: a snapshot of its best face (privacy
// applied) as a JPEG file, its history row, and the FaceEnded event naming both.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "serve/history_writer.h"
#include "serve/live_event.h"
#include "vision/privacy.h"
#include "vision/track_ledger.h"

namespace maskwatch {

// A snapshot that cannot be written is logged and left out (the row and event still come);
// the event's id is 0 while storage fails (the row waits in `history`), then it has no URL.
// `clip`: the file of a clip asked for this track (under clips/), or "".
FaceEnded archive_track(const std::string& camera, TrackEnded track, const std::vector<std::string>& classes,
                        FacePrivacy privacy, const std::filesystem::path& snapshot_dir, HistoryWriter& history,
                        const std::string& clip = "");

}  // namespace maskwatch
