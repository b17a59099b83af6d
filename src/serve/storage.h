// Compliance history in one SQLite file (WAL, so readers never block the writer and an
// unclean kill loses at most the transaction in flight): one row per finished face track
// and per camera status change (`events`), per-minute counts per camera (`compliance`), and
// JPEG snapshots of each track's best frame beside it. Retention by age and snapshot size.
// Thread-safe: one connection behind a mutex (the writers are the inference workers and
// serve's housekeeping thread, which runs retention in short batches; the readers are HTTP
// handlers; every statement is short).
// The folder belongs to one process (a lock file in it). A database file that is deleted
// (with its folder or alone) or replaced under us is noticed before each statement (its
// inode against the open one's): the folder and database are then recreated, or the other
// file opened; until that works every call throws, so writers keep their rows (HistoryWriter).
#pragma once
#include <sqlite3.h>
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "util/error.h"
#include "util/locked_file.h"

namespace maskwatch {

struct TrackEvent {
  std::string camera;
  int track_id = 0;
  double start = 0, end = 0;             // unix seconds
  std::string label;                     // final verdict: the class seen longest (uncertain only if nothing else)
  double score = 0;                      // its highest smoothed probability
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;  // box in the best frame
  std::string snapshot;                  // file name under snapshots/, or ""
  std::string zone;                      // the include zone the face entered by, or ""
  std::string clip;                      // file name under clips/ (clips.unmasked_tracks), or ""
};

struct EventQuery {
  std::string camera, label, type;
  std::optional<double> after, before;
  int limit = 100;
};

struct ComplianceBucket {
  int64_t start = 0;  // unix seconds
  int64_t faces = 0, with_mask = 0, without_mask = 0, uncertain = 0;
  int64_t in_view = 0;  // of `faces`: still in view (open tracks, counted by their verdict so far)
  // {start, faces, with_mask, without_mask, uncertain, in_view, compliance}: compliance is the
  // share with a mask among the faces with a verdict (null when there were none).
  nlohmann::json to_json() const;
};

// The database cannot be used now (deleted or replaced, and reopening fails): the API
// answers 503, not the 400 of an Error the request caused.
struct StorageUnavailable : Error {
  using Error::Error;
};

// This row cannot be stored, however often it is tried (a time that is not a finite number, a
// constraint it breaks): the writer drops it instead of letting it hold up every row behind it.
struct StorageRowRejected : Error {
  using Error::Error;
};

// A file's identity (device, inode): another file at the same path has another one.
struct FileId {
  dev_t dev = 0;
  ino_t ino = 0;
  bool operator==(const FileId& o) const { return dev == o.dev && ino == o.ino; }
  bool operator!=(const FileId& o) const { return !(*this == o); }
};
std::optional<FileId> file_id(const std::filesystem::path& path);  // nullopt: no such file

// Local midnight of today, as unix seconds (the default start of "today's" compliance).
double today_start();

class Storage {
 public:
  // Creates dir, the database and snapshots/ when missing; throws Error naming the file, or
  // naming the process that holds the folder.
  explicit Storage(const std::filesystem::path& dir);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  // Adds the track (and its minute's counts); returns the event id. `mask_label` names the
  // class that counts as compliant.
  int64_t add_track(const TrackEvent& e, const std::string& mask_label);
  int64_t add_status(const std::string& camera, double time, const std::string& status, const std::string& detail);
  // An alert that fired: `rule` is its name, `kind` the rule's kind, `detail` the message,
  // `snapshot` a file under snapshots/ or "", `clip` one under clips/ (perhaps still being
  // recorded) or "".
  int64_t add_alert(const std::string& camera, double time, const std::string& rule, const std::string& kind,
                    const std::string& detail, const std::string& snapshot, const std::string& clip = "");

  // Cameras whose last status in history is not offline or disabled: the service before us
  // did not stop cleanly (killed, crashed, power lost), so they were never marked offline and
  // the downtime read as online. Each gets an offline row at its last event's time (when it
  // was last known running), with `detail`. Returns the cameras marked. At start, before any
  // camera writes.
  std::vector<std::string> close_unclean_stop(const std::string& detail);

  // The clip file `clip` will not be there: the events naming it stop doing so.
  void forget_clip(const std::string& clip);

  nlohmann::json events(const EventQuery& q);
  std::optional<nlohmann::json> event(int64_t id);
  // Buckets of `interval_s` seconds (60, 3600, 86400) between after and before.
  // Whether the history holds any event of this camera.
  bool has_camera(const std::string& camera);
  bool has_zone(const std::string& camera, const std::string& zone);  // a face event in it (of that camera)
  bool has_label(const std::string& label);  // an event with it (a verdict, status or alert rule)
  // Of one include zone too, when `zone` is given (counted from the face events, which carry
  // it; `mask_label` names the compliant verdict there, as for add_track).
  std::vector<ComplianceBucket> compliance(const std::string& camera, double after, double before, int64_t interval_s,
                                           const std::string& zone = "", const std::string& mask_label = "with_mask");

  // Pictures are snapshots and clips. History (events, compliance) older than `days` goes
  // with its pictures; pictures older than `snapshot_days` go before their rows (the row
  // stays, without one); then the oldest pictures while they take more than max_mb. 0 turns
  // each rule off. Returns how many picture files were removed. Works in short batches, the
  // lock let go between them (writers and readers wait milliseconds, not seconds, however much
  // goes), and stops between two when `keep_going` (if given) says false.
  int apply_retention(int days, int snapshot_days, int64_t max_mb, double now,
                      const std::function<bool()>& keep_going = {});

  // Reopens (or recreates) the database if its file was deleted or replaced; throws Error
  // while that fails. Every other call does the same first; this one lets a caller notice
  // it without a statement to run (HistoryWriter, every 2 s).
  void check();
  // How many times the database was recreated or reopened after it was deleted or replaced.
  int64_t reopened() const;

  std::filesystem::path snapshot_dir() const { return dir_ / "snapshots"; }
  std::filesystem::path clip_dir() const { return dir_ / "clips"; }
  std::filesystem::path database_path() const { return dir_ / "maskwatch.db"; }

 private:
  std::filesystem::path wal_path() const { return dir_ / "maskwatch.db-wal"; }
  std::filesystem::path shm_path() const { return dir_ / "maskwatch.db-shm"; }
  void open_locked();                // folder, lock, database, schema; throws Error
  void close_locked();               // and, if its file was deleted or replaced, its -wal and -shm
  sqlite3* db_locked();              // the connection, reopened first if its file was deleted or replaced
  bool file_is_ours_locked() const;  // the path still names the file we opened
  void exec(const char* sql);
  bool has_column(const char* table, const char* column);
  // Retention's batches: the time of the last of the oldest rows after `after` and before
  // `before` (nullopt: none), and the picture files of the rows in (after, last].
  std::optional<double> batch_end_locked(sqlite3* db, double after, double before);
  void pictures_locked(sqlite3* db, double after, double last, std::vector<std::filesystem::path>& files);
  void picture_written_locked(double time);  // keeps the watermark below a new row with a picture
  std::filesystem::path dir_;
  sqlite3* db_ = nullptr;
  std::optional<FileId> db_id_, wal_id_, shm_id_;  // the open database's files
  std::unique_ptr<FolderLock> lock_;
  int64_t reopened_ = 0;
  std::string lost_;  // what happened to the last file: "was deleted", "was replaced by another file"
  double pictures_cleared_to_ = 0;  // rows up to this time have no pictures left (retention)
  mutable std::mutex mutex_;
};

}  // namespace maskwatch
