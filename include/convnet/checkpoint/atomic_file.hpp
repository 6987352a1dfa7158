// Writing a file so that a reader sees either the old contents or the new,
// never a mixture, whenever the writer is interrupted (a crash, SIGKILL, a
// full disk): write "<path>.tmp", flush it to the disk, rename it over
// <path>, and flush the directory so the rename itself survives a power cut.
#pragma once

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>

#include <fcntl.h>
#include <unistd.h>

namespace convnet {

/// Why a file could not be written: the file concerned and the system's reason.
struct FileWriteError {
  std::string file, reason;
};

/// Replaces `path` with `bytes` atomically; returns what went wrong, if anything
/// (the previous contents of `path` are then untouched).
inline std::optional<FileWriteError> write_file_atomically(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return FileWriteError{tmp, std::strerror(errno)};
  auto fail = [&](int error) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return FileWriteError{tmp, std::strerror(error)};
  };
  for (std::size_t written = 0; written < bytes.size();) {
    const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(errno);
    written += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) return fail(errno);
  if (::close(fd) != 0) {
    const int error = errno;
    ::unlink(tmp.c_str());
    return FileWriteError{tmp, std::strerror(error)};
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int error = errno;
    ::unlink(tmp.c_str());
    return FileWriteError{tmp + " (renaming it to " + path + ")", std::strerror(error)};
  }
  const std::string::size_type slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return std::nullopt;
}

}  // namespace convnet
