// An append-only text file that one process owns at a time: opened with an exclusive
// flock(2), so a second writer gets a clear error instead of interleaving into corrupt
// lines. The file is emptied only after the lock is held (never under another writer).
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

  // Writes `line` and a newline in one write(2) call; throws Error on a write failure.
  void write_line(const std::string& line);

 private:
  std::filesystem::path path_;
  int fd_ = -1;
};

}  // namespace maskwatch
