#include "serve/storage.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <thread>

#include "util/error.h"

namespace maskwatch {
namespace {

// Retention works in batches of rows, the lock let go between them: one DELETE of a month of a
// busy site's history held the lock the inference workers write every face with (and the API
// reads with) for seconds: 100,000 rows 0.41 s, a million about 4 s (bench_storage).
constexpr int kRetentionBatch = 500;
constexpr double kBeforeAll = -1e308;

// A failed statement: the row's fault (a constraint, a value SQLite refuses: StorageRowRejected,
// trying again cannot help) or the database's (full, read-only, locked: Error, try later).
[[noreturn]] void throw_sqlite(sqlite3* db, int rc, const std::string& context = "") {
  const std::string why = fmt::format("database: {}{}", sqlite3_errmsg(db), context);
  // (A mismatch or a bad bind index is this code's fault, not the row's: not dropped for it.)
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
    case SQLITE_TOOBIG: throw StorageRowRejected(why);
    default: throw Error(why);
  }
}

// SQLite stores NaN as NULL (refused by NOT NULL only after the insert has begun) and the
// compliance minute of an infinite time is undefined: neither is a time to keep.
void require_finite_time(double time) {
  if (!std::isfinite(time)) throw StorageRowRejected(fmt::format("its time ({}) is not a finite number", time));
}

// A prepared statement that finalizes itself; bind() by 1-based position.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    if (const int rc = sqlite3_prepare_v2(db, sql, -1, &st_, nullptr); rc != SQLITE_OK)
      throw_sqlite(db, rc, fmt::format(" ({})", sql));
  }
  ~Statement() { sqlite3_finalize(st_); }
  Statement& bind(int i, double v) { return check(sqlite3_bind_double(st_, i, v)); }
  Statement& bind(int i, int64_t v) { return check(sqlite3_bind_int64(st_, i, v)); }
  Statement& bind(int i, int v) { return check(sqlite3_bind_int(st_, i, v)); }
  Statement& bind(int i, const std::string& v) {
    return check(sqlite3_bind_text(st_, i, v.c_str(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
  }
  bool step() {
    const int rc = sqlite3_step(st_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw_sqlite(db_, rc);
  }
  double real(int c) const { return sqlite3_column_double(st_, c); }
  int64_t integer(int c) const { return sqlite3_column_int64(st_, c); }
  std::string text(int c) const {
    const auto* p = sqlite3_column_text(st_, c);
    return p ? reinterpret_cast<const char*>(p) : "";
  }
  bool null(int c) const { return sqlite3_column_type(st_, c) == SQLITE_NULL; }

 private:
  Statement& check(int rc) {
    if (rc != SQLITE_OK) throw_sqlite(db_, rc);
    return *this;
  }
  sqlite3* db_;
  sqlite3_stmt* st_ = nullptr;
};

constexpr const char* kEventColumns =
    "id, type, camera, time, track_id, start, end_time, label, score, x1, y1, x2, y2, snapshot, detail, zone, clip, "
    "kind";

nlohmann::json event_row(const Statement& s) {
  nlohmann::json e = {{"id", s.integer(0)}, {"type", s.text(1)}, {"camera", s.text(2)}, {"time", s.real(3)}};
  if (e["type"] == "track") {
    e["track_id"] = s.integer(4);
    e["start_time"] = s.real(5);
    e["end_time"] = s.real(6);
    e["label"] = s.text(7);
    e["score"] = s.real(8);
    e["box"] = {s.real(9), s.real(10), s.real(11), s.real(12)};
    e["has_snapshot"] = !s.text(13).empty();
    e["has_clip"] = !s.text(16).empty();
    if (!s.text(15).empty()) e["zone"] = s.text(15);
  } else if (e["type"] == "alert") {
    e["rule"] = s.text(7);
    // As the live alert (SSE, webhook, MQTT) says it: kind and message; detail for older clients.
    if (!s.text(17).empty()) e["kind"] = s.text(17);
    e["message"] = s.text(14);
    e["detail"] = s.text(14);
    e["has_snapshot"] = !s.text(13).empty();
    e["has_clip"] = !s.text(16).empty();
  } else {
    e["status"] = s.text(7);
    e["detail"] = s.text(14);
  }
  return e;
}

}  // namespace

nlohmann::json ComplianceBucket::to_json() const {
  const int64_t decided = with_mask + without_mask;
  return {{"start", start},
          {"faces", faces},
          {"with_mask", with_mask},
          {"without_mask", without_mask},
          {"uncertain", uncertain},
          {"in_view", in_view},
          {"compliance", decided ? nlohmann::json(static_cast<double>(with_mask) / decided) : nlohmann::json(nullptr)}};
}

std::optional<FileId> file_id(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return FileId{st.st_dev, st.st_ino};
}

double today_start() {
  std::time_t t = std::time(nullptr);
  std::tm tm = *std::localtime(&t);
  tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
  return static_cast<double>(std::mktime(&tm));
}

Storage::Storage(const std::filesystem::path& dir) : dir_(dir) {
  std::lock_guard<std::mutex> lock(mutex_);
  open_locked();
}

Storage::~Storage() {
  std::lock_guard<std::mutex> lock(mutex_);
  close_locked();
}

void Storage::open_locked() {
  std::error_code ec;
  for (const auto& sub : {snapshot_dir(), clip_dir()}) {
    std::filesystem::create_directories(sub, ec);
    if (ec) throw Error(fmt::format("storage folder {}: cannot create {}: {}", dir_.string(), sub.string(), ec.message()));
  }
  // A recreated folder has a new lock file: let go of the old one (gone with its folder, or
  // still ours: flock would refuse us a second lock on it) and take the one there now.
  lock_.reset();
  lock_ = std::make_unique<FolderLock>(dir_, "maskwatch.lock", "storage folder");
  if (sqlite3_open_v2(database_path().c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    const std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw Error(fmt::format("database {}: {}", database_path().string(), why));
  }
  try {
    sqlite3_busy_timeout(db_, 2000);
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=NORMAL");  // WAL + NORMAL: durable up to the last checkpointed commit
    exec(
        "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL, "
        "camera TEXT NOT NULL, time REAL NOT NULL, track_id INTEGER, start REAL, end_time REAL, label TEXT, "
        "score REAL, x1 REAL, y1 REAL, x2 REAL, y2 REAL, snapshot TEXT, detail TEXT)");
    exec("CREATE INDEX IF NOT EXISTS events_time ON events(time)");
    // Zones came later: a database of an older build gets the column (empty for its rows).
    if (!has_column("events", "zone")) exec("ALTER TABLE events ADD COLUMN zone TEXT");
    if (!has_column("events", "clip")) exec("ALTER TABLE events ADD COLUMN clip TEXT");  // clips too
    if (!has_column("events", "kind")) exec("ALTER TABLE events ADD COLUMN kind TEXT");  // and alert kinds
    // The API's filters (?camera=, ?label=, ?zone=) and retention's clearing of a removed
    // file's name look rows up by these: without an index each was a scan of the whole history
    // under the lock the inference workers take to save each finished face.
    exec("CREATE INDEX IF NOT EXISTS events_camera_time ON events(camera, time)");
    exec("CREATE INDEX IF NOT EXISTS events_label ON events(label)");
    exec("CREATE INDEX IF NOT EXISTS events_zone ON events(zone)");
    exec("CREATE INDEX IF NOT EXISTS events_snapshot ON events(snapshot)");
    exec("CREATE INDEX IF NOT EXISTS events_clip ON events(clip)");
    exec(
        "CREATE TABLE IF NOT EXISTS compliance (camera TEXT NOT NULL, minute INTEGER NOT NULL, "
        "faces INTEGER NOT NULL DEFAULT 0, with_mask INTEGER NOT NULL DEFAULT 0, without_mask INTEGER NOT NULL "
        "DEFAULT 0, uncertain INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (camera, minute))");
    exec("CREATE INDEX IF NOT EXISTS compliance_minute ON compliance(minute)");  // retention's batches
    pictures_cleared_to_ = kBeforeAll;  // another file (recreated, replaced): walked from its start
    // Both files exist now (the schema went through the WAL): remember which files they are.
    db_id_ = file_id(database_path());
    wal_id_ = file_id(wal_path());
    shm_id_ = file_id(shm_path());
    if (!db_id_) throw Error(fmt::format("database {}: {}", database_path().string(), std::strerror(errno)));
  } catch (...) {
    close_locked();
    throw;
  }
}

bool Storage::file_is_ours_locked() const { return db_id_ && file_id(database_path()) == db_id_; }

void Storage::close_locked() {
  if (!db_) return;
  const bool moved = !file_is_ours_locked();
  sqlite3_close(db_);
  db_ = nullptr;
  // SQLite neither checkpoints nor deletes the -wal and -shm files of a database file that
  // was deleted or replaced under it. Left at the path, our old WAL would be replayed into
  // the next database opened there (old pages over a new file): remove them while they
  // are still ours (not those of a database that another process has made there since).
  if (moved) {
    std::error_code ec;
    if (wal_id_ && file_id(wal_path()) == wal_id_) std::filesystem::remove(wal_path(), ec);
    if (shm_id_ && file_id(shm_path()) == shm_id_) std::filesystem::remove(shm_path(), ec);
  }
  db_id_.reset();
  wal_id_.reset();
  shm_id_.reset();
}

sqlite3* Storage::db_locked() {
  if (db_ && file_is_ours_locked()) return db_;
  if (db_) {
    // Rows written from here on would go to a file nobody can open again: stop using it.
    std::error_code ec;
    lost_ = std::filesystem::exists(database_path(), ec) ? "was replaced by another file" : "was deleted";
    spdlog::error("storage: database {} {}; reopening it (the history in the old file is gone)",
                  database_path().string(), lost_);
    close_locked();
  }
  try {
    open_locked();
  } catch (const std::exception& e) {
    throw StorageUnavailable(
        fmt::format("database {} {} and cannot be reopened: {}", database_path().string(), lost_, e.what()));
  }
  ++reopened_;
  spdlog::warn("storage: database {} reopened; history is written to it again", database_path().string());
  return db_;
}

void Storage::check() {
  std::lock_guard<std::mutex> lock(mutex_);
  db_locked();
}

int64_t Storage::reopened() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return reopened_;
}

void Storage::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    const std::string why = err ? err : "unknown error";
    sqlite3_free(err);
    throw Error(fmt::format("database {}: {}", database_path().string(), why));
  }
}

bool Storage::has_camera(const std::string& camera) {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement s(db_locked(), "SELECT 1 FROM events WHERE camera = ? LIMIT 1");
  s.bind(1, camera);
  return s.step();
}

bool Storage::has_zone(const std::string& camera, const std::string& zone) {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement s(db_locked(), camera.empty() ? "SELECT 1 FROM events WHERE zone = ?1 LIMIT 1"
                                          : "SELECT 1 FROM events WHERE zone = ?1 AND camera = ?2 LIMIT 1");
  s.bind(1, zone);
  if (!camera.empty()) s.bind(2, camera);
  return s.step();
}

bool Storage::has_label(const std::string& label) {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement s(db_locked(), "SELECT 1 FROM events WHERE label = ?1 LIMIT 1");
  s.bind(1, label);
  return s.step();
}

bool Storage::has_column(const char* table, const char* column) {
  Statement s(db_, fmt::format("PRAGMA table_info({})", table).c_str());
  while (s.step())
    if (s.text(1) == column) return true;
  return false;
}

int64_t Storage::add_track(const TrackEvent& e, const std::string& mask_label) {
  require_finite_time(e.end);
  std::lock_guard<std::mutex> lock(mutex_);
  sqlite3* db = db_locked();
  exec("BEGIN");
  try {
    Statement ins(db,
                  "INSERT INTO events (type, camera, time, track_id, start, end_time, label, score, x1, y1, x2, y2, "
                  "snapshot, zone, clip) VALUES ('track', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    ins.bind(1, e.camera).bind(2, e.end).bind(3, e.track_id).bind(4, e.start).bind(5, e.end).bind(6, e.label);
    ins.bind(7, e.score).bind(8, static_cast<double>(e.x1)).bind(9, static_cast<double>(e.y1));
    ins.bind(10, static_cast<double>(e.x2)).bind(11, static_cast<double>(e.y2)).bind(12, e.snapshot);
    ins.bind(13, e.zone).bind(14, e.clip);
    ins.step();
    const int64_t id = sqlite3_last_insert_rowid(db);
    const char* column = e.label == mask_label ? "with_mask" : e.label == "uncertain" ? "uncertain" : "without_mask";
    Statement up(db, fmt::format("INSERT INTO compliance (camera, minute, faces, {0}) VALUES (?, ?, 1, 1) "
                                 "ON CONFLICT(camera, minute) DO UPDATE SET faces = faces + 1, {0} = {0} + 1",
                                 column)
                         .c_str());
    up.bind(1, e.camera).bind(2, static_cast<int64_t>(std::floor(e.end / 60)) * 60);
    up.step();
    exec("COMMIT");
    if (!e.snapshot.empty() || !e.clip.empty()) picture_written_locked(e.end);
    return id;
  } catch (...) {
    // Not exec(): after a full disk SQLite may have rolled back already, and that error
    // must not hide the first one.
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

int64_t Storage::add_alert(const std::string& camera, double time, const std::string& rule, const std::string& kind,
                           const std::string& detail, const std::string& snapshot, const std::string& clip) {
  require_finite_time(time);
  std::lock_guard<std::mutex> lock(mutex_);
  sqlite3* db = db_locked();
  Statement ins(db,
                "INSERT INTO events (type, camera, time, label, kind, detail, snapshot, clip) "
                "VALUES ('alert', ?, ?, ?, ?, ?, ?, ?)");
  ins.bind(1, camera).bind(2, time).bind(3, rule).bind(4, kind).bind(5, detail).bind(6, snapshot).bind(7, clip);
  ins.step();
  if (!snapshot.empty() || !clip.empty()) picture_written_locked(time);
  return sqlite3_last_insert_rowid(db);
}

void Storage::picture_written_locked(double time) {
  // A row with a picture at or before the rows retention has cleared (a clock set back, rows
  // that waited in memory for the disk) is walked by its next pass.
  if (time <= pictures_cleared_to_) pictures_cleared_to_ = std::nextafter(time, kBeforeAll);
}

int64_t Storage::add_status(const std::string& camera, double time, const std::string& status,
                            const std::string& detail) {
  require_finite_time(time);
  std::lock_guard<std::mutex> lock(mutex_);
  sqlite3* db = db_locked();
  Statement ins(db, "INSERT INTO events (type, camera, time, label, detail) VALUES ('status', ?, ?, ?, ?)");
  ins.bind(1, camera).bind(2, time).bind(3, status).bind(4, detail);
  ins.step();
  return sqlite3_last_insert_rowid(db);
}

std::vector<std::string> Storage::close_unclean_stop(const std::string& detail) {
  std::lock_guard<std::mutex> lock(mutex_);
  sqlite3* db = db_locked();
  // Each camera's newest status row, and its newest event of any kind.
  Statement last(db,
                 "SELECT s.camera, s.label, (SELECT MAX(time) FROM events e WHERE e.camera = s.camera) FROM events s "
                 "WHERE s.type = 'status' AND s.id = (SELECT id FROM events t WHERE t.type = 'status' AND "
                 "t.camera = s.camera ORDER BY time DESC, id DESC LIMIT 1)");
  std::vector<std::pair<std::string, double>> open;
  while (last.step())
    if (last.text(1) != "offline" && last.text(1) != "disabled") open.emplace_back(last.text(0), last.real(2));
  std::vector<std::string> out;
  for (const auto& [camera, time] : open) {
    Statement ins(db, "INSERT INTO events (type, camera, time, label, detail) VALUES ('status', ?, ?, 'offline', ?)");
    ins.bind(1, camera).bind(2, time).bind(3, detail);
    ins.step();
    out.push_back(camera);
  }
  return out;
}

void Storage::forget_clip(const std::string& clip) {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement s(db_locked(), "UPDATE events SET clip = '' WHERE clip = ?");
  s.bind(1, clip);
  s.step();
}

nlohmann::json Storage::events(const EventQuery& q) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string sql = fmt::format("SELECT {} FROM events WHERE 1=1", kEventColumns);
  if (!q.camera.empty()) sql += " AND camera = ?1";
  if (!q.label.empty()) sql += " AND label = ?2";
  if (!q.type.empty()) sql += " AND type = ?3";
  if (q.after) sql += " AND time > ?4";
  if (q.before) sql += " AND time < ?5";
  sql += " ORDER BY time DESC, id DESC LIMIT ?6";
  Statement s(db_locked(), sql.c_str());
  if (!q.camera.empty()) s.bind(1, q.camera);
  if (!q.label.empty()) s.bind(2, q.label);
  if (!q.type.empty()) s.bind(3, q.type);
  if (q.after) s.bind(4, *q.after);
  if (q.before) s.bind(5, *q.before);
  s.bind(6, std::clamp(q.limit, 1, 10000));
  nlohmann::json out = nlohmann::json::array();
  while (s.step()) out.push_back(event_row(s));
  return out;
}

std::optional<nlohmann::json> Storage::event(int64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement s(db_locked(), fmt::format("SELECT {} FROM events WHERE id = ?", kEventColumns).c_str());
  s.bind(1, id);
  if (!s.step()) return std::nullopt;
  auto e = event_row(s);
  e["snapshot_file"] = s.text(13);
  e["clip_file"] = s.text(16);
  return e;
}

std::vector<ComplianceBucket> Storage::compliance(const std::string& camera, double after, double before,
                                                  int64_t interval_s, const std::string& zone,
                                                  const std::string& mask_label) {
  std::lock_guard<std::mutex> lock(mutex_);
  // The compliance table holds a camera's minutes; a zone's are counted from its face events
  // (the same minutes: the one a track ended in; kept as long: retention_days).
  std::string sql =
      zone.empty()
          ? "SELECT (minute / ?1) * ?1 AS b, SUM(faces), SUM(with_mask), SUM(without_mask), SUM(uncertain) FROM "
            "compliance WHERE minute >= ?2 AND minute < ?3"
          : "SELECT ((CAST(end_time / 60 AS INTEGER) * 60) / ?1) * ?1 AS b, COUNT(*), SUM(label = ?6), "
            "SUM(label <> ?6 AND label <> 'uncertain'), SUM(label = 'uncertain') FROM events WHERE time >= ?7 "
            "AND time < ?8 AND type = 'track' AND zone = ?5";
  if (!camera.empty()) sql += " AND camera = ?4";
  sql += " GROUP BY b ORDER BY b";
  Statement s(db_locked(), sql.c_str());
  // Any finite time may come from a query (after=-1e300): clamped to what int64 holds (the cast
  // of such a double was undefined).
  const auto whole = [](double t) { return static_cast<int64_t>(std::clamp(t, -9.0e18, 9.0e18)); };
  s.bind(1, interval_s).bind(2, whole(std::floor(after))).bind(3, whole(std::ceil(before)));
  if (!camera.empty()) s.bind(4, camera);
  if (!zone.empty()) {
    // A track's time is its end; its minute starts at or after `after` and before `before`
    // exactly when the end lies in these minute-aligned bounds (the time index answers).
    const auto minute_up = [](double t) { return std::ceil(t / 60) * 60; };
    s.bind(5, zone).bind(6, mask_label).bind(7, minute_up(std::floor(after))).bind(8, minute_up(std::ceil(before)));
  }
  std::vector<ComplianceBucket> out;
  while (s.step()) out.push_back({s.integer(0), s.integer(1), s.integer(2), s.integer(3), s.integer(4)});
  return out;
}

namespace {

int remove_files(const std::vector<std::filesystem::path>& files) {
  int removed = 0;
  std::error_code ec;
  for (const auto& f : files) removed += std::filesystem::remove(f, ec);
  return removed;
}

}  // namespace

std::optional<double> Storage::batch_end_locked(sqlite3* db, double after, double before) {
  Statement st(db,
               "SELECT MAX(time) FROM (SELECT time FROM events WHERE time > ? AND time < ? ORDER BY time LIMIT ?)");
  st.bind(1, after).bind(2, before).bind(3, kRetentionBatch);
  if (!st.step() || st.null(0)) return std::nullopt;
  return st.real(0);
}

void Storage::pictures_locked(sqlite3* db, double after, double last, std::vector<std::filesystem::path>& files) {
  Statement st(db, "SELECT snapshot, clip FROM events WHERE time > ? AND time <= ?");
  st.bind(1, after).bind(2, last);
  while (st.step()) {
    if (const auto snap = st.text(0); !snap.empty()) files.push_back(snapshot_dir() / snap);
    if (const auto clip = st.text(1); !clip.empty()) files.push_back(clip_dir() / clip);
  }
}

int Storage::apply_retention(int days, int snapshot_days, int64_t max_mb, double now,
                             const std::function<bool()>& keep_going) {
  // Between two batches the lock is free for a moment: a mutex is not fair, and without the
  // pause this thread took it again before a waiting writer woke (bench_storage: a track write
  // waited 2.6 s with batches of 2,000 and no pause).
  const auto go_on = [&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return !keep_going || keep_going();
  };
  int removed = 0;
  // History (events, compliance) before the cutoff goes, with the pictures of its events:
  // snapshots (JPEG) and clips (MP4), each a column naming a file in its folder.
  if (days > 0) {
    const double cutoff = now - days * 86400.0;
    while (go_on()) {
      std::vector<std::filesystem::path> doomed;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        sqlite3* db = db_locked();  // once: a file replaced between two statements would mix two databases
        const auto last = batch_end_locked(db, kBeforeAll, cutoff);
        if (!last) break;
        pictures_locked(db, kBeforeAll, *last, doomed);
        Statement dele(db, "DELETE FROM events WHERE time <= ?");
        dele.bind(1, *last).step();
      }
      removed += remove_files(doomed);
    }
    while (go_on()) {
      std::lock_guard<std::mutex> lock(mutex_);
      Statement delc(db_locked(),
                     "DELETE FROM compliance WHERE rowid IN (SELECT rowid FROM compliance WHERE minute < ? LIMIT ?)");
      delc.bind(1, static_cast<int64_t>(cutoff)).bind(2, kRetentionBatch).step();
      if (sqlite3_changes(db_) == 0) break;
    }
  }
  // Pictures before their cutoff go before their rows (the row stays, without one). Rows up to
  // pictures_cleared_to_ were cleared by an earlier pass: not walked again.
  if (snapshot_days > 0) {
    const double cutoff = now - snapshot_days * 86400.0;
    while (go_on()) {
      std::vector<std::filesystem::path> doomed;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        sqlite3* db = db_locked();                  // first: a replaced file resets the watermark
        const double after = pictures_cleared_to_;  // then read
        const auto last = batch_end_locked(db, after, cutoff);
        if (!last) break;
        pictures_locked(db, after, *last, doomed);
        for (const char* column : {"snapshot", "clip"}) {
          Statement clear(db,
                          fmt::format("UPDATE events SET {0} = '' WHERE time > ? AND time <= ? AND {0} <> ''", column)
                              .c_str());
          clear.bind(1, after).bind(2, *last).step();
        }
        pictures_cleared_to_ = *last;
      }
      removed += remove_files(doomed);
    }
  }
  if (max_mb <= 0 || !go_on()) return removed;
  // Size cap over both folders: the oldest files first (by modification time; hidden files
  // are writes in progress).
  struct File {
    std::filesystem::file_time_type time;
    std::filesystem::path path;
    uintmax_t size;
    const char* column;
  };
  const std::pair<const char*, std::filesystem::path> media[] = {{"snapshot", snapshot_dir()}, {"clip", clip_dir()}};
  std::vector<File> files;
  uintmax_t total = 0;
  std::error_code ec;
  for (const auto& [column, dir] : media)
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
      if (e.path().filename().string().rfind('.', 0) == 0) continue;
      const auto size = e.file_size(ec);
      if (ec) continue;
      const auto time = e.last_write_time(ec);
      if (ec) continue;
      files.push_back({time, e.path(), size, column});
      total += size;
    }
  std::sort(files.begin(), files.end(), [](const File& a, const File& b) {
    return a.time != b.time ? a.time < b.time : a.path < b.path;
  });
  const uintmax_t cap = static_cast<uintmax_t>(max_mb) * 1024 * 1024;
  for (const auto& f : files) {
    // One short lock per file: no pause needed (at 1 ms a file, 90,000 files took 90 s of sleep).
    if (total <= cap || (keep_going && !keep_going())) break;
    if (std::filesystem::remove(f.path, ec)) {
      total -= f.size;
      ++removed;
      std::lock_guard<std::mutex> lock(mutex_);
      Statement clear(db_locked(), fmt::format("UPDATE events SET {0} = '' WHERE {0} = ?", f.column).c_str());
      clear.bind(1, f.path.filename().string());
      clear.step();
    }
  }
  return removed;
}

}  // namespace maskwatch
