// Private: the one way pyramidion writes files. Every writer of the library and its tools goes
// through these (configs, weights, tokenizers, checkpoints, reports, summaries, HTML pages), so
// every write has the same guarantees, chosen by what the path names (STYLE.md, rule 15):
//   - a regular file, or nothing yet: the bytes go to a temporary name next to the target, are
//     flushed to disk (fsync) and renamed over the target, whose directory is then flushed: after
//     a crash the target is the old version or the new one, never a partial one;
//   - a symbolic link: the same for the file it leads to (followed to the end, created when the
//     link dangles); the link stays a link;
//   - a device (/dev/null, /dev/full, a terminal), a named pipe or a socket: written through, in
//     order, as `cmd > path` would; nothing is created or renamed next to it;
//   - "-", /dev/stdout, /dev/stderr, /dev/fd/N, /proc/self/fd/N: the descriptor itself (a copy of
//     it), so that a shell's redirection, append mode or process substitution is honoured;
//   - a failure throws std::runtime_error "<who>: <what> '<path>': <the OS reason>" (e.g. "No space
//     left on device"; "standard output" for "-") and removes the temporary.
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

/// Writes `bytes` to `path` as its kind asks (see the top of this file).
void write_output_file(const std::string& who, const std::string& path, std::string_view bytes);

/// True when `path` is written through (a device, a pipe, a socket, a descriptor: see the top of
/// this file) rather than replaced atomically. Opens nothing.
bool writes_through(const std::string& path);

/// Throws std::runtime_error naming `path` and the OS reason unless a file can be written there:
/// for a path replaced atomically, a temporary is created next to its (resolved) target and
/// removed; a path written through is only looked at (opening a named pipe would block, and
/// closing it would end its reader's input).
void check_writable(const std::string& who, const std::string& path);

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

/// A file written piece by piece (e.g. summaries as they are made) and published by commit(); or,
/// for a path written through, a descriptor written in order (see the top of this file).
class OutputFile {
 public:
  /// Creates the temporary next to `path` (or its link's target), or opens what `path` names for a
  /// path written through. Throws std::runtime_error when it cannot.
  OutputFile(std::string who, std::string path);
  /// Removes the temporary unless it was committed or kept; closes a descriptor written through.
  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  void write(std::string_view bytes);
  /// Everything written so far is on disk (fsync): keep_as_partial() keeps up to here. Written
  /// through, the bytes are already where they go (a pipe or a device has nothing to flush).
  void flush();
  /// Flushes, renames the temporary over the target and flushes the directory; written through,
  /// closes the descriptor (reporting the error a close can still give).
  void commit();
  /// Gives up publishing: cuts the temporary back to what the last flush() made durable, renames
  /// it to ".<name>.partial" next to the target (replacing an older one) and returns that path;
  /// "" (and the temporary removed, by the destructor) when nothing was flushed, the file is
  /// already committed, or it is written through (what was written is already there).
  std::string keep_as_partial();

  /// The path as given.
  const std::string& path() const { return path_; }
  /// "'<path>'", or "standard output" for "-": for messages.
  std::string shown() const;
  /// True for a device, pipe, socket or descriptor, written in place rather than replaced.
  bool through() const { return through_; }

 private:
  [[noreturn]] void fail(const std::string& what, int error) const;
  std::string who_, path_;
  std::string target_;  // the regular file replaced: path_, or where its links lead
  std::string temp_;    // the temporary next to target_ ("" when written through)
  bool through_ = false;
  int fd_ = -1;
  int64_t written_ = 0;  // bytes written
  int64_t flushed_ = 0;  // of which the last flush() made durable
};

/// A directory assembled under a temporary name and published whole by commit(): a checkpoint
/// or a model directory. A crash leaves the previous directory at `path` (or, between the two
/// renames of a replacement, none, with the previous one set aside), never a partial one.
class AtomicDirectory {
 public:
  /// Creates `path`'s parent directories and the temporary directory next to `path`. A `path`
  /// that is a symbolic link is followed: the directory it leads to is replaced, the link kept.
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
  /// OutputFile there, whose commit() flushes it) before commit().
  const std::string& staging_path() const { return temp_; }

 private:
  std::string who_, path_, temp_;
  bool committed_ = false;
};

}  // namespace detail
}  // namespace pyramidion
