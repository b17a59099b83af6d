// Compliance history in one SQLite file (WAL, so readers never block the writer and an
// unclean kill loses at most the transaction in flight): one row per finished face track
// and per camera status change (`events`), per-minute counts per camera (`compliance`), and
// JPEG snapshots of each track's best frame beside it. Retention by age and snapshot size.
// Thread-safe: one connection behind a mutex (the writer is the inference worker; the
// readers are HTTP handlers; all statements are short).
#pragma once
#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace maskwatch {

struct TrackEvent {
  std::string camera;
  int track_id = 0;
  double start = 0, end = 0;             // unix seconds
  std::string label;                     // final verdict: the class seen longest (uncertain only if nothing else)
  double score = 0;                      // its highest smoothed probability
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;  // box in the best frame
  std::string snapshot;                  // file name under snapshots/, or ""
};

struct EventQuery {
  std::string camera, label, type;
  std::optional<double> after, before;
  int limit = 100;
};

struct ComplianceBucket {
  int64_t start = 0;  // unix seconds
  int64_t faces = 0, with_mask = 0, without_mask = 0, uncertain = 0;
  // {start, faces, with_mask, without_mask, uncertain, compliance}: compliance is the share
  // with a mask among the faces with a verdict (null when there were none).
  nlohmann::json to_json() const;
};

// Local midnight of today, as unix seconds (the default start of "today's" compliance).
double today_start();

class Storage {
 public:
  // Creates dir, the database and snapshots/ when missing; throws Error naming the file.
  explicit Storage(const std::filesystem::path& dir);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  // Adds the track (and its minute's counts); returns the event id. `mask_label` names the
  // class that counts as compliant.
  int64_t add_track(const TrackEvent& e, const std::string& mask_label);
  int64_t add_status(const std::string& camera, double time, const std::string& status, const std::string& detail);
  // An alert that fired: `rule` is its name, `detail` the message, `snapshot` a file under
  // snapshots/ or "".
  int64_t add_alert(const std::string& camera, double time, const std::string& rule, const std::string& detail,
                    const std::string& snapshot);

  nlohmann::json events(const EventQuery& q);
  std::optional<nlohmann::json> event(int64_t id);
  // Buckets of `interval_s` seconds (60, 3600, 86400) between after and before.
  std::vector<ComplianceBucket> compliance(const std::string& camera, double after, double before, int64_t interval_s);

  // Deletes events and counts older than `days` and the oldest snapshots beyond `max_mb`.
  // Returns how many snapshot files were removed.
  int apply_retention(int days, int64_t max_mb, double now);

  std::filesystem::path snapshot_dir() const { return dir_ / "snapshots"; }
  std::filesystem::path database_path() const { return dir_ / "maskwatch.db"; }

 private:
  void exec(const char* sql);
  std::filesystem::path dir_;
  sqlite3* db_ = nullptr;
  std::mutex mutex_;
};

}  // namespace maskwatch
