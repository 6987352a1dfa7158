// Writing a file so that a reader sees either the old contents or the new,
// never a mixture, whenever the writer is interrupted (a crash, SIGKILL, a
// full disk, a file-size limit) and whoever else writes the same path:
// write a temporary file of a name no one else uses ("<path>.tmp.XXXXXX",
// created exclusively, so a link planted there is never followed), flush it
// to the disk, rename it over <path>, and flush the directory so the rename
// itself survives a power cut. Two writers of one path each rename a whole
// file of their own, so the path always holds one of them, complete. A link
// planted at <path> is replaced, never followed; the file gets the mode a
// plain create would (0666 less the umask).
#pragma once

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace convnet {

/// Why a file could not be written: the file concerned and the system's reason.
struct FileWriteError {
  std::string file, reason;
};

/// Stages of an atomic write, for an observer: the temporary file complete and on disk (before the
/// rename), and renamed over the path.
enum class AtomicWriteStage { Written, Renamed };

/// Called at each stage of every atomic write of the process (none by default). convnet's tests
/// kill the program at a chosen stage to show that no moment of a save loses a result.
inline std::function<void(AtomicWriteStage, const std::string& path)>& atomic_write_observer() {
  static std::function<void(AtomicWriteStage, const std::string&)> observer;
  return observer;
}

namespace detail {
/// The process's umask, read without changing it (umask(2) can only be read by setting it, which
/// would race with other threads creating files): /proc/self/status on Linux, else 022.
inline mode_t current_umask() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("Umask:", 0) == 0) return static_cast<mode_t>(std::strtoul(line.c_str() + 6, nullptr, 8) & 0777);
  }
  return 022;
}
}  // namespace detail

/// Replaces `path` with `bytes` atomically; returns what went wrong, if anything
/// (the previous contents of `path` are then untouched, and no temporary file is left).
inline std::optional<FileWriteError> write_file_atomically(const std::string& path, const std::string& bytes) {
  std::vector<char> name(path.begin(), path.end());
  for (const char c : std::string(".tmp.XXXXXX")) name.push_back(c);
  name.push_back('\0');
  // mkostemp: O_CREAT | O_EXCL (never an existing file, never through a symbolic link), mode 0600.
  const int fd = ::mkostemp(name.data(), O_CLOEXEC);
  const std::string tmp(name.data());
  if (fd < 0) return FileWriteError{tmp, std::strerror(errno)};
  ::fchmod(fd, 0666 & ~detail::current_umask());  // what a plain create would give
  auto fail = [&](int error, bool open) {
    if (open) ::close(fd);
    ::unlink(tmp.c_str());
    return FileWriteError{tmp, std::strerror(error)};
  };
  for (std::size_t written = 0; written < bytes.size();) {
    const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(errno, true);
    written += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) return fail(errno, true);
  if (::close(fd) != 0) return fail(errno, false);
  if (atomic_write_observer()) atomic_write_observer()(AtomicWriteStage::Written, path);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    FileWriteError error = fail(errno, false);
    error.file += " (renaming it to " + path + ")";
    return error;
  }
  const std::string::size_type slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  if (atomic_write_observer()) atomic_write_observer()(AtomicWriteStage::Renamed, path);
  return std::nullopt;
}

}  // namespace convnet
