// Files that one process owns at a time, through an exclusive flock(2) (released by the
// kernel when the process ends, however it ends: no stale locks after a kill -9).
// LockedLineFile: an append-only text file, so a second writer gets a clear error instead of
// interleaving into corrupt lines; it is emptied at its first line (the lock held), so a run
// that writes none (it could not start) leaves what an earlier one wrote.
// FolderLock: a folder that one process writes (the `serve` data folder).
#pragma once
#include <filesystem>
#include <string>

namespace maskwatch {

class LockedLineFile {
 public:
  // Throws Error("<what> <path>: ...") when it cannot be opened or another process holds it.
  LockedLineFile(const std::filesystem::path& path, const std::string& what);
  ~LockedLineFile();
  LockedLineFile(const LockedLineFile&) = delete;
  LockedLineFile& operator=(const LockedLineFile&) = delete;

  // Writes `line` and a newline in one write(2) call (the first empties the file); throws
  // Error on a write failure.
  void write_line(const std::string& line);

 private:
  std::filesystem::path path_;
  std::string what_;
  int fd_ = -1;
  bool emptied_ = false;
};

// Holds an exclusive flock on `<dir>/<name>` (created if missing) for its life and writes
// our pid into it, so that a second process is told which one holds the folder.
class FolderLock {
 public:
  // Throws Error("<what> <dir> is in use by another maskwatch process (pid N)") when held.
  FolderLock(const std::filesystem::path& dir, const std::string& name, const std::string& what);
  ~FolderLock();
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace maskwatch
