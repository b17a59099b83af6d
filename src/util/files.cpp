#include "util/files.h"

#include <fmt/format.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <map>
#include <random>
#include <sstream>
#include <system_error>

#include "util/error.h"

namespace maskwatch {

namespace {
// Reads into a buffer sized from the file's length: growing it while reading would hold up to
// twice a model's size at once.
template <typename Buffer>
Buffer read_whole(const fs::path& path, const std::string& what, bool allow_empty) {
  std::error_code ec;
  // A folder on the way that cannot be searched (EACCES) is not "not found": the admin is told why.
  if (!fs::exists(path, ec))
    throw Error(ec ? fmt::format("cannot open {}: {}: {}", what, path.string(), ec.message())
                   : what + " not found: " + path.string());
  if (fs::is_directory(path, ec)) throw Error(what + " is a directory, not a file: " + path.string());
  // A device such as /dev/zero never ends: reading it would fill the memory. (A pipe may be
  // meant, as with <(...), and is read to its end.)
  const auto type = fs::status(path, ec).type();
  if (type == fs::file_type::character || type == fs::file_type::block || type == fs::file_type::socket)
    throw Error(what + " is a device or socket, not a file: " + path.string());
  errno = 0;
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) {
    // libstdc++ opens with fopen, which leaves the reason in errno (a config readable by root only).
    const int err = errno;
    throw Error(fmt::format("cannot open {}: {}{}", what, path.string(), err ? ": " + std::string(std::strerror(err)) : ""));
  }
  const std::streamoff size = in.tellg();
  Buffer bytes;
  if (size > 0) {
    in.seekg(0);
    bytes.resize(static_cast<size_t>(size));
    in.read(reinterpret_cast<char*>(bytes.data()), size);
    if (in.gcount() != size) throw Error("cannot read " + what + ": " + path.string());
  } else {  // /proc files and pipes report no size: read until the end
    in.clear();
    in.seekg(0);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  if (in.bad()) throw Error("cannot read " + what + ": " + path.string());
  if (bytes.empty() && !allow_empty) throw Error(what + " is empty: " + path.string());
  return bytes;
}
}  // namespace

std::string lower_extension(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}

std::vector<uint8_t> read_file_bytes(const fs::path& path, const std::string& what, bool allow_empty) {
  return read_whole<std::vector<uint8_t>>(path, what, allow_empty);
}

std::string read_file_text(const fs::path& path, const std::string& what) {
  return read_whole<std::string>(path, what, false);
}

fs::path sibling_name(const fs::path& path, const std::string& prefix, const std::string& tag) {
  constexpr size_t kNameMax = 255;
  std::string ext = path.extension().string();
  std::string stem = path.stem().string();
  if (ext.size() > 32) {  // no encoder knows such an "extension": all of it is the stem
    stem = path.filename().string();
    ext.clear();
  }
  const size_t added = prefix.size() + tag.size() + ext.size();
  if (stem.size() + added > kNameMax) {
    // Two long names that differ only after the cut must not share a sibling (a recording's
    // part would be taken for another's): the cut stem ends in a hash of the whole one.
    uint32_t h = 2166136261u;  // FNV-1a: the same on every run
    for (unsigned char c : stem) h = (h ^ c) * 16777619u;
    const std::string mark = fmt::format("~{:08x}", h);
    stem.resize(kNameMax - std::min(kNameMax, added + mark.size()));
    // Not in the middle of a UTF-8 character (a file system that checks names would refuse it):
    // back to the last character's lead byte, and that character goes only if it is not whole.
    size_t lead = stem.size();
    while (lead > 0 && (static_cast<unsigned char>(stem[lead - 1]) & 0xC0) == 0x80) --lead;
    if (lead > 0) {
      const auto c = static_cast<unsigned char>(stem[lead - 1]);
      const size_t length = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
      if (stem.size() - (lead - 1) < length) stem.resize(lead - 1);
    }
    stem += mark;
  }
  return path.parent_path() / (prefix + stem + tag + ext);
}

namespace {
// ".<stem>.tmpXXXXXXXX<ext>": hidden, random, and the extension kept (encoders pick the format by it).
fs::path temp_sibling(const fs::path& path) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::ostringstream tag;
  tag << ".tmp" << std::hex << std::setw(8) << std::setfill('0') << (rng() & 0xffffffffu);
  return sibling_name(path, ".", tag.str());
}
void ensure_parent(const fs::path& path) {
  if (path.has_parent_path()) {
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    if (ec) throw Error("cannot create directory " + path.parent_path().string() + ": " + ec.message());
  }
}
// Where a write to `path` lands. A symlink is followed to its final target, so the link stays
// a link and its target gets the new content (a rename over the link replaced it with a plain
// file). A device, pipe or socket (/dev/stdout, a FIFO another process reads) is written in
// place: a rename would replace it, even /dev/full for root.
struct OutputTarget {
  fs::path path;
  bool in_place = false;
};
OutputTarget output_target(const fs::path& path) {
  std::error_code ec;
  const auto st = fs::status(path, ec);  // follows links
  if (!ec && fs::exists(st) && !fs::is_regular_file(st) && !fs::is_directory(st)) return {path, true};
  fs::path p = path;
  for (int hops = 0; hops < 40 && fs::is_symlink(fs::symlink_status(p, ec)); ++hops) {
    const fs::path to = fs::read_symlink(p, ec);
    if (ec) break;
    p = to.is_absolute() ? to : p.parent_path() / to;
  }
  return {p, false};
}
}  // namespace

void write_atomic_with(const fs::path& requested, const std::function<bool(const fs::path&)>& write) {
  const auto [path, in_place] = output_target(requested);
  if (in_place) {
    if (!write(path)) throw Error("cannot write " + requested.string());
    return;
  }
  ensure_parent(path);
  const fs::path tmp = temp_sibling(path);
  bool ok = false;
  try {
    ok = write(tmp);
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
  std::error_code ec;
  if (!ok) {
    fs::remove(tmp, ec);
    throw Error("cannot write " + path.string());
  }
  fs::rename(tmp, path, ec);
  if (ec) {
    const std::string why = ec.message();  // before the clean-up overwrites ec
    fs::remove(tmp, ec);
    throw Error("cannot move " + tmp.string() + " to " + path.string() + ": " + why);
  }
}

void check_output_path(const fs::path& requested, const std::string& what) {
  if (requested.empty()) throw Error(what + ": empty path");
  // Many tools read '-' as standard output; here it would be a file named '-' in the current
  // folder, beside the report the command prints there.
  if (requested == "-")
    throw Error(what + " '-': name a file (to print it, name /dev/stdout; the command's report goes there too)");
  const auto [path, in_place] = output_target(requested);
  if (in_place) {  // a device or pipe: written where it is
    if (access(path.c_str(), W_OK) != 0)
      throw Error(fmt::format("{} {}: {}", what, requested.string(), std::strerror(errno)));
    return;
  }
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw Error(fmt::format("{} {}: is a directory", what, path.string()));
  const fs::path parent = path.has_parent_path() ? path.parent_path() : fs::path(".");
  fs::create_directories(parent, ec);
  if (ec)
    throw Error(fmt::format("{} {}: cannot create folder {}: {}", what, path.string(), parent.string(), ec.message()));
  if (access(parent.c_str(), W_OK | X_OK) != 0)
    throw Error(
        fmt::format("{} {}: cannot write in {}: {}", what, path.string(), parent.string(), std::strerror(errno)));
  if (fs::exists(path, ec) && access(path.c_str(), W_OK) != 0)
    throw Error(fmt::format("{} {}: {}", what, path.string(), std::strerror(errno)));
  // access() says yes to root everywhere, and a folder such as /proc takes no new files: create
  // (and remove) the temporary sibling an atomic write will use, so that is known now too.
  const fs::path probe = temp_sibling(path);
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0)
    throw Error(
        fmt::format("{} {}: cannot create a file in {}: {}", what, path.string(), parent.string(), std::strerror(errno)));
  ::close(fd);
  fs::remove(probe, ec);
  // Another run writing it (run --events holds an exclusive flock on its file): replacing it
  // would throw that run's work away.
  const int held = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (held >= 0) {
    const bool busy = ::flock(held, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    ::close(held);  // releases the lock taken, if any
    if (busy)
      throw Error(fmt::format("{} {}: another process is writing it (another maskwatch process's events?)", what,
                              requested.string()));
  }
}

void refuse_same_output(const std::vector<std::pair<fs::path, std::string>>& outputs) {
  std::map<fs::path, std::string> seen;
  for (const auto& [path, what] : outputs) {
    if (path.empty()) continue;
    std::error_code ec;
    const fs::path where = fs::weakly_canonical(fs::absolute(output_target(path).path, ec), ec);
    const auto [at, fresh] = seen.emplace(ec ? path : where, what);
    if (!fresh)
      throw Error(fmt::format("the {} and the {} are the same file ({}): one would overwrite the other", at->second,
                              what, path.string()));
  }
}

namespace {
bool file_id(const fs::path& p, std::pair<uint64_t, uint64_t>& id) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return false;
  id = {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
  return true;
}
}  // namespace

std::vector<fs::path> without_repeats(const std::vector<fs::path>& files,
                                      const std::function<void(const fs::path&, const fs::path&)>& repeat) {
  std::vector<fs::path> out;
  std::map<std::pair<uint64_t, uint64_t>, size_t> seen;  // identity -> index in out
  std::pair<uint64_t, uint64_t> id;
  for (const auto& f : files) {
    if (file_id(f, id)) {  // (one that cannot be inspected stays: reading it says why)
      if (const auto [at, fresh] = seen.emplace(id, out.size()); !fresh) {
        repeat(f, out[at->second]);
        continue;
      }
    }
    out.push_back(f);
  }
  return out;
}

InputFiles::InputFiles(const std::vector<fs::path>& inputs) {
  std::pair<uint64_t, uint64_t> id;
  for (const auto& in : inputs)
    if (file_id(in, id)) ids_.emplace(id, in);
}

void InputFiles::refuse_overwriting(const fs::path& output, const std::string& what) const {
  std::pair<uint64_t, uint64_t> id;
  if (!file_id(output, id)) return;  // not there yet: it cannot be an input
  const auto it = ids_.find(id);
  if (it != ids_.end())
    throw Error(fmt::format("{} {} is the input {}: writing it would destroy the input; choose another path", what,
                            output.string(), it->second.string()));
}

void check_output_dir(const fs::path& dir, const std::string& what) {
  if (dir.empty()) throw Error(what + ": empty path");
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec))
    throw Error(fmt::format("{} {} is a file, not a folder", what, dir.string()));
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir, ec))
    throw Error(fmt::format("{} {}: cannot create it{}", what, dir.string(), ec ? ": " + ec.message() : ""));
  if (access(dir.c_str(), W_OK | X_OK) != 0)
    throw Error(fmt::format("{} {}: {}", what, dir.string(), std::strerror(errno)));
}

void refuse_output_inside(const fs::path& out, const fs::path& data, const std::string& what, const std::string& why) {
  std::error_code ec;
  const fs::path o = fs::weakly_canonical(fs::absolute(out), ec);
  const fs::path d = fs::weakly_canonical(fs::absolute(data), ec);
  if (ec || d.empty()) return;
  auto oi = o.begin();
  for (auto di = d.begin(); di != d.end(); ++di, ++oi)
    if (di->empty()) break;  // a trailing separator
    else if (oi == o.end() || *oi != *di) return;
  throw Error(fmt::format("{} {} is inside the data folder {}: {}; write it somewhere else", what, out.string(),
                          data.string(), why));
}

void write_file_atomic(const fs::path& path, const void* data, size_t size) {
  write_atomic_with(path, [&](const fs::path& tmp) {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return false;
    out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
    out.flush();
    return static_cast<bool>(out);
  });
}

void write_file_atomic(const fs::path& path, const std::string& text) {
  write_file_atomic(path, text.data(), text.size());
}

}  // namespace maskwatch
