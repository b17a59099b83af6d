#include "util/locked_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "util/error.h"
#include "util/files.h"

namespace maskwatch {
namespace {

// flock(LOCK_EX | LOCK_NB) on an open descriptor; false when another open file holds it
// (even one of this process: flock locks belong to the open file, not the process).
bool try_lock(int fd, int* err) {
  if (flock(fd, LOCK_EX | LOCK_NB) == 0) return true;
  *err = errno;
  return false;
}

}  // namespace

LockedLineFile::LockedLineFile(const std::filesystem::path& path, const std::string& what) : path_(path), what_(what) {
  check_output_path(path, what);
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_APPEND, 0644);
  if (fd_ < 0) throw Error(fmt::format("{} {}: {}", what, path.string(), std::strerror(errno)));
  if (int err = 0; !try_lock(fd_, &err)) {
    ::close(fd_);
    fd_ = -1;
    throw Error(err == EWOULDBLOCK
                    ? fmt::format("{} {} is being written by another maskwatch process", what, path.string())
                    : fmt::format("{} {}: cannot lock: {}", what, path.string(), std::strerror(err)));
  }
}

LockedLineFile::~LockedLineFile() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the lock
}

void LockedLineFile::write_line(const std::string& line) {
  if (!emptied_) {
    // A FIFO or device (events streamed to another process) cannot be truncated: written as is.
    struct stat st {};
    if (fstat(fd_, &st) == 0 && S_ISREG(st.st_mode) && ftruncate(fd_, 0) != 0)
      throw Error(fmt::format("{} {}: cannot empty it: {}", what_, path_.string(), std::strerror(errno)));
    emptied_ = true;
  }
  std::string buf = line;
  buf.push_back('\n');
  const char* p = buf.data();
  size_t left = buf.size();
  while (left > 0) {
    const ssize_t n = ::write(fd_, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw Error(fmt::format("cannot write {}: {}", path_.string(), std::strerror(errno)));
    p += n;
    left -= static_cast<size_t>(n);
  }
}

FolderLock::FolderLock(const std::filesystem::path& dir, const std::string& name, const std::string& what) {
  const auto path = dir / name;
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error(fmt::format("{} {}: cannot open {}: {}", what, dir.string(), name, std::strerror(errno)));
  if (int err = 0; !try_lock(fd_, &err)) {
    char holder[32] = "";
    const ssize_t n = ::pread(fd_, holder, sizeof holder - 1, 0);
    holder[n > 0 ? n : 0] = '\0';
    ::close(fd_);
    fd_ = -1;
    const std::string pid = std::to_string(std::atoi(holder));
    throw Error(err == EWOULDBLOCK
                    ? fmt::format("{} {} is in use by another maskwatch process (pid {}; lock file {})", what,
                                  dir.string(), pid, path.string())
                    : fmt::format("{} {}: cannot lock {}: {}", what, dir.string(), name, std::strerror(err)));
  }
  // Our pid, for the error above; a failure to write it only makes that message poorer.
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) == 0) (void)!::pwrite(fd_, pid.data(), pid.size(), 0);
}

FolderLock::~FolderLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the lock; the file stays (removing it would race a new owner)
}

}  // namespace maskwatch
