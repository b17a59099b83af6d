#include "util/locked_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/error.h"
#include "util/files.h"

namespace maskwatch {

LockedLineFile::LockedLineFile(const std::filesystem::path& path, const std::string& what) : path_(path) {
  check_output_path(path, what);
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_APPEND, 0644);
  if (fd_ < 0) throw Error(fmt::format("{} {}: {}", what, path.string(), std::strerror(errno)));
  if (flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    throw Error(err == EWOULDBLOCK
                    ? fmt::format("{} {} is being written by another maskwatch process", what, path.string())
                    : fmt::format("{} {}: cannot lock: {}", what, path.string(), std::strerror(err)));
  }
  if (ftruncate(fd_, 0) != 0) throw Error(fmt::format("{} {}: {}", what, path.string(), std::strerror(errno)));
}

LockedLineFile::~LockedLineFile() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the lock
}

void LockedLineFile::write_line(const std::string& line) {
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

}  // namespace maskwatch
