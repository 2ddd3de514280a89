// Private: the one way pyramidion writes files. Every writer of the library and its tools goes
// through these (configs, weights, tokenizers, checkpoints, reports, summaries, HTML pages), so
// every write has the same guarantees:
//   - the bytes go to a temporary name next to the target, are flushed to disk (fsync) and renamed
//     over the target, whose directory is then flushed: after a crash the target is the old
//     version or the new one, never a partial one;
//   - a failure throws std::runtime_error "<who>: <what> '<path>': <the OS reason>" (e.g. "No space
//     left on device") and removes the temporary.
// Temporary names follow one scheme, ".<name>.tmp-XXXXXX" while being written and
// ".<name>.old-XXXXXX" for a directory set aside to be replaced, so that remove_temporaries()
// recognises every leftover of a process killed in the middle of a write.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace pyramidion {
namespace detail {

/// True for the names the writers below give their temporaries (".<name>.tmp-XXXXXX",
/// ".<name>.old-XXXXXX").
bool is_temporary_name(const std::string& filename);

/// Removes every entry of `dir` whose name is_temporary_name() (files and directories, leftovers
/// of killed writers). Returns how many; a missing directory has none.
int remove_temporaries(const std::string& dir);

/// Removes the temporaries that writers of `path` (a file or directory) left: the entries next to
/// it named ".<name>.tmp-XXXXXX" or ".<name>.old-XXXXXX". Returns how many.
int remove_temporaries_of(const std::string& path);

/// Writes `bytes` to `path` atomically (see the top of this file).
void write_file_atomically(const std::string& who, const std::string& path, std::string_view bytes);

/// Appends `bytes` to `path` (created when absent), e.g. a line of a JSON-lines log. Not atomic:
/// for logs that only grow. Throws std::runtime_error naming the path and the OS reason.
void append_to_file(const std::string& who, const std::string& path, std::string_view bytes);

/// Removes `path` and, for a directory, everything under it (symbolic links are removed, not
/// followed); a missing path is no error. Returns 0, or the errno of the first entry that could
/// not be removed (the rest is still attempted). The library's one recursive removal, in place of
/// std::filesystem::remove_all: PyTorch wheels (2.11 among them, pytorch/pytorch#133437) export
/// their own statically linked copy of that function, which the dynamic linker can bind our calls
/// to and which crashes (a call through a null pointer).
int remove_tree(const std::string& path);

/// Removes the directory `path` so that a crash cannot leave half of it under its name: renamed to
/// a temporary name (".<name>.old-XXXXXX") first, then deleted (in place when it cannot be
/// renamed). Best effort: returns false when something could not be removed.
bool discard_directory(const std::string& path);

/// Points the symbolic link `link` at `target` (a path relative to the link's directory),
/// replacing an existing link in one rename. Throws std::runtime_error naming the link and the OS
/// reason.
void replace_symlink(const std::string& who, const std::string& link, const std::string& target);

/// Reads a whole (small) file; std::runtime_error "<who>: cannot open '<path>': ..." otherwise.
std::string read_file(const std::string& who, const std::string& path);

/// A file written piece by piece (e.g. summaries as they are made) and published by commit().
class AtomicFile {
 public:
  /// Creates the temporary next to `path`. Throws std::runtime_error when it cannot.
  AtomicFile(std::string who, std::string path);
  /// Removes the temporary unless it was committed or kept.
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(std::string_view bytes);
  /// Everything written so far is on disk (fsync): keep_as_partial() keeps up to here.
  void flush();
  /// Flushes, renames the temporary over the target and flushes the directory.
  void commit();
  /// Gives up publishing: cuts the temporary back to what the last flush() made durable, renames
  /// it to ".<name>.partial" next to the target (replacing an older one) and returns that path;
  /// "" (and the temporary removed, by the destructor) when nothing was flushed or the file is
  /// already committed.
  std::string keep_as_partial();

  const std::string& path() const { return path_; }

 private:
  std::string who_, path_, temp_;
  int fd_ = -1;
  int64_t written_ = 0;  // bytes in the temporary
  int64_t flushed_ = 0;  // of which the last flush() made durable
};

/// A directory assembled under a temporary name and published whole by commit(): a checkpoint
/// or a model directory. A crash leaves the previous directory at `path` (or, between the two
/// renames of a replacement, none, with the previous one set aside), never a partial one.
class AtomicDirectory {
 public:
  /// Creates `path`'s parent directories and the temporary directory next to `path`.
  AtomicDirectory(std::string who, std::string path);
  /// Removes the temporary directory unless it was committed.
  ~AtomicDirectory();
  AtomicDirectory(const AtomicDirectory&) = delete;
  AtomicDirectory& operator=(const AtomicDirectory&) = delete;

  /// Writes (and flushes) the file `name` inside the temporary directory.
  void write(const std::string& name, std::string_view bytes);
  /// Flushes the directory and renames it onto `path`. An existing `path` is first set aside
  /// (".<name>.old-XXXXXX") and removed once the new one is in place.
  void commit();

  /// The final path.
  const std::string& path() const { return path_; }
  /// The temporary directory, for a file that the caller streams into it itself (through an
  /// AtomicFile there, whose commit() flushes it) before commit().
  const std::string& staging_path() const { return temp_; }

 private:
  std::string who_, path_, temp_;
  bool committed_ = false;
};

}  // namespace detail
}  // namespace pyramidion
