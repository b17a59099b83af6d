// File helpers: whole-file reads with clear errors, and atomic writes (temp file in the
// same directory + rename) so an interrupted run never leaves a half-written artifact.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace maskwatch {

namespace fs = std::filesystem;

// The path's extension in lower case, with its dot (".jpg"); "" when it has none.
std::string lower_extension(const fs::path& path);

// Reads a whole file. Throws Error("<what> <path>: ...") when it is missing, a directory,
// unreadable or (unless allow_empty) empty. `what` names the file's role, e.g. "model file".
std::vector<uint8_t> read_file_bytes(const fs::path& path, const std::string& what = "file", bool allow_empty = false);
std::string read_file_text(const fs::path& path, const std::string& what = "file");

// Writes bytes to path atomically. Creates the parent directory if needed. Through a symlink
// the target is replaced (the link stays); a device or pipe is written in place.
void write_file_atomic(const fs::path& path, const void* data, size_t size);
void write_file_atomic(const fs::path& path, const std::string& text);

// Calls write(tmp_path) to produce the file under a temporary name that keeps the
// extension (so an encoder chosen by extension still picks the right one), then renames it
// into place.
// `write` returns false or throws on failure; the temp file is removed either way.
void write_atomic_with(const fs::path& path, const std::function<bool(const fs::path&)>& write);

// Checks, before any work starts, that `path` can be written: creates its parent folder,
// refuses a directory and a folder we may not write to. Throws Error("<what> <path>: why").
// Commands call it for every output so a long run never fails at its very end.
// A symlink is checked at its target, a device or pipe (/dev/stdout, a FIFO) as written in
// place; a file another process holds an exclusive flock on (run --events) is refused, and so
// is '-' (it is not read as standard output).
void check_output_path(const fs::path& path, const std::string& what);
// Throws Error naming both roles when two of a command's outputs ({path, role}; empty paths
// skipped) are one file (spelled differently, or through a link): one would overwrite the other.
void refuse_same_output(const std::vector<std::pair<fs::path, std::string>>& outputs);
// The same for an output folder: created if missing, must be writable.
void check_output_dir(const fs::path& dir, const std::string& what);

// Throws Error when `out` is `data` or lies inside it (symlinks resolved): what a command writes
// there (plots, sheets) would be read back as training images by the next run.
// `why` says what would go wrong (by default: read back as training images).
void refuse_output_inside(const fs::path& out, const fs::path& data, const std::string& what,
                          const std::string& why = "its files would be read as training images");

// `files` without those that are one file with an earlier one (named twice, through a link,
// or also inside a folder named): `repeat(file, first)` is called for each one left out.
std::vector<fs::path> without_repeats(const std::vector<fs::path>& files,
                                      const std::function<void(const fs::path&, const fs::path&)>& repeat);

// `path`'s sibling named <prefix><stem><tag><extension>, the stem cut (never inside a UTF-8
// character, and then marked with a hash of the whole stem: "~1a2b3c4d") so that the name fits
// a file system's 255 bytes: a legal name of 243 bytes or more had failed with "File name too
// long" once a temporary or part name was made of it.
fs::path sibling_name(const fs::path& path, const std::string& prefix, const std::string& tag);

// A command's input files by identity (device and inode: links and other spellings of one file
// are one file), so an output can be refused when it already is one of them: an annotated copy
// or a recording written over its source destroys the user's data. One stat per check.
class InputFiles {
 public:
  explicit InputFiles(const std::vector<fs::path>& inputs);
  // Throws Error("<what> <output> is the input <in>: ...") when `output` is one of the inputs.
  void refuse_overwriting(const fs::path& output, const std::string& what) const;

 private:
  std::map<std::pair<uint64_t, uint64_t>, fs::path> ids_;
};

}  // namespace maskwatch
