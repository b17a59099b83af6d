#include "serve/history_writer.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>

#include "util/bounded_queue.h"

namespace maskwatch {

HistoryWriter::HistoryWriter(Storage& storage, std::string mask_label, size_t capacity)
    : storage_(storage), mask_label_(std::move(mask_label)), capacity_(std::max<size_t>(1, capacity)) {}

int64_t HistoryWriter::add_track(const TrackEvent& e) {
  Row r;
  r.track = e;
  return submit(std::move(r));
}

int64_t HistoryWriter::add_status(const std::string& camera, double time, const std::string& status,
                                  const std::string& detail) {
  Row r;
  r.kind = Row::Kind::Status;
  r.camera = camera;
  r.time = time;
  r.status = status;
  r.detail = detail;
  return submit(std::move(r));
}

int64_t HistoryWriter::add_alert(const std::string& camera, double time, const std::string& rule,
                                 const std::string& kind, const std::string& detail, const std::string& snapshot,
                                 const std::string& clip) {
  Row r;
  r.kind = Row::Kind::Alert;
  r.camera = camera;
  r.time = time;
  r.status = rule;
  r.alert_kind = kind;
  r.detail = detail;
  r.snapshot = snapshot;
  r.clip = clip;
  return submit(std::move(r));
}

const char* HistoryWriter::kind_name(Row::Kind kind) {
  switch (kind) {
    case Row::Kind::Track: return "track";
    case Row::Kind::Status: return "status";
    case Row::Kind::Alert: return "alert";
  }
  return "history";
}

int64_t HistoryWriter::write(const Row& row) {
  switch (row.kind) {
    case Row::Kind::Track: return storage_.add_track(row.track, mask_label_);
    case Row::Kind::Status: return storage_.add_status(row.camera, row.time, row.status, row.detail);
    case Row::Kind::Alert:
      return storage_.add_alert(row.camera, row.time, row.status, row.alert_kind, row.detail, row.snapshot, row.clip);
  }
  return 0;
}

int64_t HistoryWriter::submit(Row row) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (push_dropping_oldest(pending_, std::move(row), capacity_)) {
    if (dropped_ == 0)
      spdlog::error("storage: {} history rows wait in memory; dropping the oldest from now on", capacity_);
    ++dropped_;
  }
  int64_t id = 0;
  flush_locked(&pending_.back(), &id);
  return id;
}

bool HistoryWriter::flush_locked(const Row* newest, int64_t* newest_id) {
  size_t written = 0;
  while (!pending_.empty()) {
    try {
      const int64_t id = write(pending_.front());
      if (newest && &pending_.front() == newest) *newest_id = id;
    } catch (const StorageRowRejected& e) {
      // Writing it again would fail again and hold up every row behind it: dropped, counted.
      // A source whose clock gives no numbers would send one a frame: the log says it once a minute.
      const Row& r = pending_.front();
      const std::string line = fmt::format("storage: a {} row of camera {} cannot be stored and is dropped: {}",
                                           kind_name(r.kind), r.kind == Row::Kind::Track ? r.track.camera : r.camera,
                                           e.what());
      reject_log_.log(spdlog::level::err, line, "such rows");
      pending_.pop_front();
      ++rejected_;
      continue;
    } catch (const std::exception& e) {
      fail_locked(e.what());
      return false;
    }
    pending_.pop_front();
    ++written;
    ++written_;
  }
  if (!error_.empty()) spdlog::info("storage: writable again; wrote {} delayed history row(s)", written);
  error_.clear();
  return true;
}

void HistoryWriter::fail_locked(const std::string& why) {
  if (error_.empty())
    spdlog::error("storage: {}; history waits in memory (up to {} rows) until a write succeeds", why, capacity_);
  error_ = why;
}

size_t HistoryWriter::retry() {
  std::lock_guard<std::mutex> lock(mutex_);
  try {
    // Even with no row to write: a deleted or replaced database is noticed (and its folder
    // recreated) now, and shown in storage.error while that fails.
    storage_.check();
  } catch (const std::exception& e) {
    fail_locked(e.what());
    return pending_.size();
  }
  flush_locked(nullptr, nullptr);
  return pending_.size();
}

size_t HistoryWriter::pending() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return pending_.size();
}

int64_t HistoryWriter::dropped() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return dropped_;
}

int64_t HistoryWriter::rejected() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return rejected_;
}

int64_t HistoryWriter::written() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return written_;
}

std::string HistoryWriter::last_error() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return error_;
}

}  // namespace maskwatch
