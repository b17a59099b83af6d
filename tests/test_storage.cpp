// Compliance history in a real SQLite file: rows, per-minute counts, buckets, restart,
// retention.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <sqlite3.h>

#include <unistd.h>

#include "serve/history_writer.h"
#include "serve/storage.h"
#include "support.h"

using namespace maskwatch;
using namespace maskwatch::test;

namespace {

TrackEvent track(const std::string& camera, int id, double end, const std::string& label,
                 const std::string& snap = "") {
  TrackEvent e;
  e.camera = camera;
  e.track_id = id;
  e.start = end - 5;
  e.end = end;
  e.label = label;
  e.score = 0.9;
  e.x1 = 10;
  e.y1 = 20;
  e.x2 = 110;
  e.y2 = 140;
  e.snapshot = snap;
  return e;
}

}  // namespace

TEST(Storage, TracksBecomeEventsAndMinuteCounts) {
  TempDir dir;
  const double t0 = 1'700'000'000;  // a minute boundary: 1700000000 = 28333333 * 60 + 20
  const double m0 = std::floor(t0 / 60) * 60;
  {
    Storage st(dir.path);
    st.add_track(track("door", 1, m0 + 10, "with_mask"), "with_mask");
    st.add_track(track("door", 2, m0 + 20, "without_mask"), "with_mask");
    st.add_track(track("door", 3, m0 + 70, "with_mask"), "with_mask");
    st.add_track(track("hall", 1, m0 + 30, "uncertain"), "with_mask");
    st.add_status("hall", m0 + 31, "offline", "stream ended");
  }
  Storage st(dir.path);  // a restart keeps history
  const auto all = st.events({});
  ASSERT_EQ(all.size(), 5u);
  EXPECT_EQ(all[0]["track_id"], 3);  // newest first
  EXPECT_EQ(all[0]["box"], nlohmann::json({10.0, 20.0, 110.0, 140.0}));
  EventQuery door;
  door.camera = "door";
  door.label = "with_mask";
  EXPECT_EQ(st.events(door).size(), 2u);
  EventQuery status;
  status.type = "status";
  const auto s = st.events(status);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0]["status"], "offline");
  EventQuery window;
  window.after = m0 + 15;
  window.before = m0 + 65;
  EXPECT_EQ(st.events(window).size(), 3u);  // door 2, hall 1, hall status

  const auto minutes = st.compliance("door", m0 - 60, m0 + 600, 60);
  ASSERT_EQ(minutes.size(), 2u);
  EXPECT_EQ(minutes[0].start, static_cast<int64_t>(m0));
  EXPECT_EQ(minutes[0].faces, 2);
  EXPECT_EQ(minutes[0].with_mask, 1);
  EXPECT_EQ(minutes[0].without_mask, 1);
  EXPECT_EQ(minutes[1].with_mask, 1);
  const auto hours = st.compliance("", m0 - 3600, m0 + 3600, 3600);
  int64_t faces = 0, uncertain = 0;
  for (const auto& b : hours) faces += b.faces, uncertain += b.uncertain;
  EXPECT_EQ(faces, 4);
  EXPECT_EQ(uncertain, 1);
}

TEST(Storage, ZonesAreCountedFromTheirEventsAndAnOldDatabaseGetsTheColumn) {
  TempDir dir;
  const double m0 = std::floor(1'700'000'000.0 / 60) * 60;
  {
    // A database of a build before zones: its events table has no zone column.
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir.path / "maskwatch.db").c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL, "
                           "camera TEXT NOT NULL, time REAL NOT NULL, track_id INTEGER, start REAL, end_time REAL, "
                           "label TEXT, score REAL, x1 REAL, y1 REAL, x2 REAL, y2 REAL, snapshot TEXT, detail TEXT);"
                           "INSERT INTO events (type, camera, time, track_id, start, end_time, label) "
                           "VALUES ('track', 'door', 1700000000, 7, 1699999995, 1700000000, 'with_mask');",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  Storage st(dir.path);
  ASSERT_EQ(st.events({}).size(), 1u);  // the old row is still there, without a zone
  EXPECT_FALSE(st.events({})[0].contains("zone"));
  const auto in = [&](int id, double end, const std::string& label, const std::string& zone) {
    TrackEvent e = track("door", id, end, label);
    e.zone = zone;
    st.add_track(e, "with_mask");
  };
  in(1, m0 + 10, "with_mask", "entrance");
  in(2, m0 + 20, "without_mask", "entrance");
  in(3, m0 + 30, "without_mask", "till");
  in(4, m0 + 70, "uncertain", "entrance");
  EXPECT_EQ(st.events({})[0]["zone"], "entrance");  // newest first
  const auto entrance = st.compliance("door", m0 - 60, m0 + 600, 60, "entrance", "with_mask");
  ASSERT_EQ(entrance.size(), 2u);
  EXPECT_EQ(entrance[0].start, static_cast<int64_t>(m0));
  EXPECT_EQ(entrance[0].faces, 2);
  EXPECT_EQ(entrance[0].with_mask, 1);
  EXPECT_EQ(entrance[0].without_mask, 1);
  EXPECT_EQ(entrance[1].uncertain, 1);
  const auto till = st.compliance("", m0 - 60, m0 + 600, 3600, "till", "with_mask");
  ASSERT_EQ(till.size(), 1u);
  EXPECT_EQ(till[0].faces, 1);
  EXPECT_EQ(till[0].without_mask, 1);
  // The camera's own counts hold every zone (and the faces outside any).
  int64_t faces = 0;
  for (const auto& b : st.compliance("door", m0 - 60, m0 + 600, 60)) faces += b.faces;
  EXPECT_EQ(faces, 4);
  // Clips came later still: the old database has their column too.
  const int64_t alert = st.add_alert("door", m0 + 80, "unmasked", "unmasked_face", "a face without a mask", "", "1-door-alert.mp4");
  EXPECT_TRUE(st.events({})[0]["has_clip"].get<bool>());
  // Alert kinds came last: stored and listed with the message, as the live alert says them.
  EXPECT_EQ(st.events({})[0]["kind"], "unmasked_face");
  EXPECT_EQ(st.events({})[0]["message"], "a face without a mask");
  EXPECT_EQ((*st.event(alert))["clip_file"], "1-door-alert.mp4");
}

// The API's filters and retention's clearing of a removed file look rows up through an index
// (each was a scan of the whole history under the lock the inference workers save faces with),
// and a time no int64 holds is clamped, not cast (undefined).
TEST(Storage, LookupsUseAnIndexAndAnyFiniteTimeIsSafe) {
  TempDir dir;
  Storage st(dir.path);
  st.add_track(track("door", 1, 1'700'000'000.0, "with_mask"), "with_mask");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(st.database_path().c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  for (const char* where : {"camera = 'door'", "label = 'x'", "zone = 'z'", "zone = 'z' AND camera = 'door'",
                            "snapshot = 'a.jpg'", "clip = 'a.mp4'"}) {
    sqlite3_stmt* plan = nullptr;
    const std::string sql = std::string("EXPLAIN QUERY PLAN SELECT 1 FROM events WHERE ") + where + " LIMIT 1";
    ASSERT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &plan, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    std::string detail;
    while (sqlite3_step(plan) == SQLITE_ROW) detail += reinterpret_cast<const char*>(sqlite3_column_text(plan, 3));
    sqlite3_finalize(plan);
    EXPECT_NE(detail.find("USING"), std::string::npos) << where << ": " << detail;
    EXPECT_EQ(detail.find("SCAN"), std::string::npos) << where << ": " << detail;
  }
  sqlite3_close(db);
  EXPECT_TRUE(st.has_label("with_mask"));
  EXPECT_FALSE(st.has_label("x"));
  EXPECT_TRUE(st.compliance("door", -1e300, 1e300, 60).size() == 1u);
  EXPECT_TRUE(st.compliance("door", 1e300, -1e300, 60, "z", "with_mask").empty());
}

TEST(Storage, RetentionDropsOldRowsAndSnapshotsOverTheSizeCap) {
  TempDir dir;
  Storage st(dir.path);
  const double now = 1'800'000'000;
  for (int i = 0; i < 4; ++i) {
    const std::string snap = std::to_string(1000 + i) + "-door-" + std::to_string(i) + ".jpg";
    write_bytes(st.snapshot_dir() / snap, std::string(600 * 1024, 'x'));  // 0.6 MB each
    st.add_track(track("door", i, i == 0 ? now - 40 * 86400 : now - 100 + i, "with_mask", snap), "with_mask");
  }
  // 40 days old goes (row and file); then the 2.4 -> 1.8 MB of files still exceed 1 MB: the oldest go.
  const int removed = st.apply_retention(30, 0, 1, now);
  EXPECT_EQ(removed, 3);
  const auto left = st.events({});
  ASSERT_EQ(left.size(), 3u);
  int with_snapshot = 0;
  for (const auto& e : left) with_snapshot += e["has_snapshot"].get<bool>();
  EXPECT_EQ(with_snapshot, 1);
  EXPECT_TRUE(fs::exists(st.snapshot_dir() / "1003-door-3.jpg"));
  EXPECT_TRUE(st.compliance("door", now - 50 * 86400, now - 35 * 86400, 86400).empty());
  // 0 turns a rule off: nothing more goes.
  EXPECT_EQ(st.apply_retention(0, 0, 0, now + 400 * 86400), 0);
  EXPECT_EQ(st.events({}).size(), 3u);
  EXPECT_TRUE(fs::exists(st.snapshot_dir() / "1003-door-3.jpg"));
  // Pictures older than snapshot_days go; their rows stay, without a picture.
  EXPECT_EQ(st.apply_retention(0, 7, 0, now + 8 * 86400), 1);
  ASSERT_EQ(st.events({}).size(), 3u);
  for (const auto& e : st.events({})) EXPECT_FALSE(e["has_snapshot"].get<bool>());
  EXPECT_FALSE(fs::exists(st.snapshot_dir() / "1003-door-3.jpg"));
}

TEST(Storage, ClipsGoWithSnapshotsByAgeAndTheOldestPicturesFirstUnderTheCap) {
  TempDir dir;
  Storage st(dir.path);
  const double now = 1'800'000'000;
  const auto picture = [](const fs::path& p, size_t kb, int age_s) {
    write_bytes(p, std::string(kb * 1024, 'x'));
    fs::last_write_time(p, fs::file_time_type::clock::now() - std::chrono::seconds(age_s));
  };
  // Old alert (10 days): snapshot and clip. New alert: a 0.7 MB clip (older file) and a
  // 0.5 MB snapshot (newer file).
  picture(st.snapshot_dir() / "a.jpg", 100, 900);
  picture(st.clip_dir() / "a.mp4", 300, 900);
  const int64_t old_id = st.add_alert("door", now - 10 * 86400, "unmasked", "unmasked_face", "old", "a.jpg", "a.mp4");
  picture(st.clip_dir() / "b.mp4", 700, 60);
  picture(st.snapshot_dir() / "b.jpg", 500, 30);
  const int64_t new_id = st.add_alert("door", now - 60, "unmasked", "unmasked_face", "new", "b.jpg", "b.mp4");
  // Pictures older than 7 days go, rows stay; then 1.2 MB > 1 MB: the oldest file (the clip) goes.
  EXPECT_EQ(st.apply_retention(30, 7, 1, now), 3);
  EXPECT_FALSE(fs::exists(st.clip_dir() / "a.mp4"));
  EXPECT_FALSE(fs::exists(st.snapshot_dir() / "a.jpg"));
  EXPECT_FALSE(fs::exists(st.clip_dir() / "b.mp4"));
  EXPECT_TRUE(fs::exists(st.snapshot_dir() / "b.jpg"));
  EXPECT_EQ((*st.event(old_id))["clip_file"], "");
  EXPECT_EQ((*st.event(old_id))["snapshot_file"], "");
  EXPECT_EQ((*st.event(new_id))["clip_file"], "");
  EXPECT_EQ((*st.event(new_id))["snapshot_file"], "b.jpg");
  // A clip still being written (a hidden temporary file) is neither counted nor removed.
  picture(st.clip_dir() / ".c.tmp1.mp4", 2000, 3000);
  EXPECT_EQ(st.apply_retention(30, 7, 1, now), 0);
  EXPECT_TRUE(fs::exists(st.clip_dir() / ".c.tmp1.mp4"));
  // History older than retention_days goes with its row.
  EXPECT_EQ(st.apply_retention(5, 0, 0, now), 0);
  EXPECT_FALSE(st.event(old_id));
  EXPECT_TRUE(st.event(new_id));
}

// Retention goes in batches (500 rows), the lock let go between them: a month of a busy site's
// history had been one DELETE that kept the cameras' writes waiting for seconds (bench_storage).
TEST(Storage, RetentionOfManyBatchesTakesEveryOldRowAndPictureAndStopsWhenAsked) {
  TempDir dir;
  Storage st(dir.path);
  const double now = 1'800'000'000;
  const auto add = [&](int i, double end) {
    const std::string snap = i % 10 == 0 ? fmt::format("{}.jpg", i) : "";
    if (!snap.empty()) write_bytes(st.snapshot_dir() / snap, "x");
    st.add_track(track("door", i, end, "with_mask", snap), "with_mask");
  };
  for (int i = 0; i < 1300; ++i) add(i, now - 40 * 86400 + i * 60);  // 40 days old, a minute apart
  for (int i = 1300; i < 2500; ++i) add(i, now - 10 * 86400 + i);     // 10 days old
  for (int i = 2500; i < 2505; ++i) add(i, now - 100 + i - 2500);     // today
  // Asked to stop after the first batch: some old rows went, not all, and their pictures with them.
  EventQuery all;
  all.limit = 10000;
  int asked = 0;
  const int first = st.apply_retention(30, 0, 0, now, [&] { return ++asked <= 1; });
  const size_t left = st.events(all).size();
  EXPECT_LT(left, 2505u);
  EXPECT_GT(left, 1205u);
  EXPECT_EQ(first, static_cast<int>(2505 - left) / 10);  // every 10th had a picture
  // Then all of it: 1,300 rows and 130 pictures older than 30 days; the 10-day-old pictures
  // (120) go by snapshot_days, their rows stay without one.
  EXPECT_EQ(first + st.apply_retention(30, 7, 0, now), 130 + 120);
  const auto rows = st.events(all);
  ASSERT_EQ(rows.size(), 1205u);
  int with_snapshot = 0;
  for (const auto& e : rows) with_snapshot += e["has_snapshot"].get<bool>();
  EXPECT_EQ(with_snapshot, 1);  // track 2500, today
  EXPECT_TRUE(st.compliance("door", now - 41 * 86400, now - 35 * 86400, 86400).empty());
  size_t files = 0;
  for ([[maybe_unused]] const auto& f : fs::directory_iterator(st.snapshot_dir())) ++files;
  EXPECT_EQ(files, 1u);
  // A later pass starts after the rows already cleared and still finds a picture newly old.
  EXPECT_EQ(st.apply_retention(30, 7, 0, now + 8 * 86400), 1);
  // A row with a picture written before the rows already cleared (a clock set back, rows that
  // waited in memory for the disk) is not skipped by the next pass.
  add(2600, now - 20 * 86400);
  EXPECT_EQ(st.apply_retention(30, 7, 0, now + 8 * 86400), 1);
  // 700 rows of one time, more than a batch: all go in one pass with their pictures.
  for (int i = 3000; i < 3700; ++i) add(i, now - 35 * 86400);
  EXPECT_EQ(st.apply_retention(30, 0, 0, now), 70);
  EXPECT_EQ(st.events(all).size(), 1206u);
}

TEST(Storage, AnUnwritableFolderIsAClearError) {
  TempDir dir;
  write_bytes(dir / "file", "x");
  try {
    Storage st(dir / "file" / "data");
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("storage folder"), std::string::npos) << e.what();
  }
}

TEST(Storage, ASecondOwnerOfTheFolderIsRefusedWithThePid) {
  TempDir dir;
  {
    Storage first(dir / "data");
    try {
      Storage second(dir / "data");  // flock locks belong to the open file: refused in one process too
      FAIL() << "expected an error";
    } catch (const std::exception& e) {
      const std::string why = e.what();
      EXPECT_NE(why.find("is in use by another maskwatch process (pid " + std::to_string(getpid()) + ";"),
                std::string::npos)
          << why;
      EXPECT_EQ(why.find('\n'), std::string::npos) << why;
    }
  }
  Storage again(dir / "data");  // released with its owner
  EXPECT_TRUE(again.events({}).empty());
}

TEST(Storage, ADeletedFolderIsRecreatedAndAReplacedDatabaseReopenedWhenUsable) {
  TempDir dir;
  const fs::path data = dir / "data";
  Storage st(data);
  st.add_status("door", 1, "online", "first");
  // The folder is deleted: the next row goes to a new folder and database, not to the
  // unlinked file.
  fs::remove_all(data);
  st.add_status("door", 2, "online", "after the delete");
  EXPECT_EQ(st.reopened(), 1);
  EXPECT_TRUE(fs::exists(data / "maskwatch.db"));
  EXPECT_TRUE(fs::exists(data / "maskwatch.lock"));
  auto rows = st.events({});
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["detail"], "after the delete");
  EXPECT_THROW(Storage{data}, std::exception);  // the new folder is locked as well

  // The database is replaced by a file that is no database: every call fails (so the
  // writer keeps its rows) until a usable file is there again.
  write_bytes(dir / "garbage", std::string(8192, 'x'));
  fs::rename(dir / "garbage", data / "maskwatch.db");
  try {
    st.add_status("door", 3, "online", "while replaced");
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("was replaced by another file and cannot be reopened"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(st.check(), std::exception);
  fs::remove(data / "maskwatch.db");
  st.check();
  EXPECT_EQ(st.reopened(), 2);
  st.add_status("door", 4, "online", "back");
  rows = st.events({});
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["detail"], "back");
}

TEST(Storage, TheWriterKeepsRowsWhileTheFolderCannotBeRecreated) {
  TempDir dir;
  const fs::path data = dir / "data";
  Storage st(data);
  HistoryWriter w(st, "with_mask", 100);
  EXPECT_GT(w.add_status("door", 1, "online", "before"), 0);
  // The folder is deleted and a file takes its place: it cannot be recreated.
  fs::remove_all(data);
  write_bytes(data, "in the way");
  EXPECT_EQ(w.add_status("door", 2, "offline", "kept 1"), 0);
  EXPECT_EQ(w.add_status("door", 3, "online", "kept 2"), 0);
  EXPECT_EQ(w.pending(), 2u);
  EXPECT_NE(w.last_error().find("was deleted and cannot be reopened"), std::string::npos) << w.last_error();
  EXPECT_EQ(w.retry(), 2u);
  // The way is clear again: the next retry recreates the folder and writes both, in order.
  fs::remove(data);
  EXPECT_EQ(w.retry(), 0u);
  EXPECT_EQ(w.last_error(), "");
  const auto rows = st.events({});
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0]["detail"], "kept 2");
  EXPECT_EQ(rows[1]["detail"], "kept 1");
}

// A row that can never be stored (its time is not a number) was retried for ever, and every
// row behind it waited in memory until the oldest were dropped: history stopped for good.
TEST(Storage, ARowThatCanNeverBeStoredIsDroppedAndTheRestAreWritten) {
  TempDir dir;
  Storage st(dir.path);
  HistoryWriter w(st, "with_mask", 100);
  EXPECT_THROW(st.add_status("door", std::nan(""), "online", ""), maskwatch::StorageRowRejected);
  EXPECT_THROW(st.add_track(track("door", 1, std::numeric_limits<double>::infinity(), "with_mask"), "with_mask"),
               maskwatch::StorageRowRejected);
  EXPECT_EQ(w.add_status("door", std::nan(""), "online", "no time"), 0);
  EXPECT_EQ(w.add_alert("door", std::numeric_limits<double>::quiet_NaN(), "no-mask", "fired", "", ""), 0);
  EXPECT_GT(w.add_status("door", 5, "offline", "written"), 0);
  EXPECT_GT(w.add_track(track("door", 2, 6, "with_mask")), 0);
  EXPECT_EQ(w.pending(), 0u);
  EXPECT_EQ(w.rejected(), 2);
  EXPECT_EQ(w.dropped(), 0);  // (too many waiting: another cause, another counter)
  EXPECT_EQ(w.last_error(), "");
  const auto rows = st.events({});
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1]["detail"], "written");
  // A storage error is not the row's: the row waits (the test above), it is not dropped.
}

// A run that was killed never wrote its cameras offline: history read "online" through the
// downtime (review of 2026-12-05). The next start closes it at the last event it knows of.
TEST(Storage, AnUncleanStopIsClosedAtTheLastEventOfEachCamera) {
  TempDir dir;
  Storage st(dir.path);
  st.add_status("door", 100, "starting", "");
  st.add_status("door", 101, "online", "");
  st.add_track(track("door", 1, 150, "with_mask"), "with_mask");  // the last sign of life
  st.add_status("hall", 100, "online", "");
  st.add_status("hall", 120, "offline", "the service stopped");  // a clean stop: nothing to do
  st.add_status("gate", 100, "disabled", "disabled in the config");
  EXPECT_EQ(st.close_unclean_stop("killed"), std::vector<std::string>{"door"});
  EventQuery q;
  q.type = "status";
  q.camera = "door";
  const auto rows = st.events(q);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0]["status"], "offline");
  EXPECT_EQ(rows[0]["time"], 150.0);
  EXPECT_EQ(rows[0]["detail"], "killed");
  EXPECT_TRUE(st.close_unclean_stop("killed").empty());  // once
}
