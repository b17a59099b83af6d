// Writes history rows (finished tracks, camera status changes) to Storage, and survives a
// storage that fails for a while: when the disk is full or the folder turns read-only, the
// rows wait in memory (bounded: the oldest are dropped and counted beyond `capacity`) and are
// written in their order as soon as a write succeeds again (a deleted or replaced database
// that Storage cannot reopen is one more such failure). serve's housekeeping thread calls
// retry() every few seconds; one log line when writing starts to fail and one when it works
// again. A row that can never be stored (StorageRowRejected: a time that is not a number) is
// dropped with an error line (at most one a minute) and counted as rejected, not retried. Thread-safe (the inference workers write tracks, capture threads status changes).
#pragma once
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>

#include "serve/storage.h"
#include "util/log_text.h"

namespace maskwatch {

class HistoryWriter {
 public:
  HistoryWriter(Storage& storage, std::string mask_label, size_t capacity = 10000);

  // The new row's event id, or 0 while it waits in memory.
  int64_t add_track(const TrackEvent& e);
  int64_t add_status(const std::string& camera, double time, const std::string& status, const std::string& detail);
  int64_t add_alert(const std::string& camera, double time, const std::string& rule, const std::string& kind,
                    const std::string& detail, const std::string& snapshot, const std::string& clip = "");
  // Writes what waits, if storage works again. Returns how many rows still wait.
  size_t retry();

  size_t pending() const;
  int64_t dropped() const;   // beyond `capacity`
  int64_t rejected() const;  // refused by storage for good (StorageRowRejected)
  // Rows written since start: the dashboard refetches history when this moves (one number in
  // its stats poll instead of an event stream per open tab).
  int64_t written() const;
  std::string last_error() const;  // "" while writes succeed

 private:
  struct Row {
    enum class Kind { Track, Status, Alert } kind = Kind::Track;
    TrackEvent track;
    std::string camera, status, detail, snapshot, clip;  // status: the status, or the alert's rule
    std::string alert_kind;
    double time = 0;
  };
  static const char* kind_name(Row::Kind kind);
  // Throws on a storage error; StorageRowRejected for a row that can never be written.
  int64_t write(const Row& row);
  int64_t submit(Row row);
  bool flush_locked(const Row* newest, int64_t* newest_id);
  void fail_locked(const std::string& why);  // one log line when writing starts to fail

  Storage& storage_;
  const std::string mask_label_;
  const size_t capacity_;
  mutable std::mutex mutex_;
  std::deque<Row> pending_;
  int64_t dropped_ = 0;
  int64_t rejected_ = 0;
  LogThrottle reject_log_{std::chrono::minutes(1)};
  int64_t written_ = 0;
  std::string error_;
};

}  // namespace maskwatch
