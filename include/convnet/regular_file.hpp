// Reading a whole file that a path names, without trusting what it names: the one way every reader
// (pictures, IDX, CIFAR batches and class names, checkpoints) takes bytes from a path.
//
// The path is opened without blocking (O_NONBLOCK: opening a FIFO with no writer would wait
// forever) and the opened descriptor is checked with fstat, so what is read is what was checked (a
// link swapped between a check and the open changes nothing): only a regular file is read, never a
// FIFO, a device (/dev/zero has no end), a directory or a socket. Its size is checked against the
// limit before the buffer is allocated, and reading stops at the limit should the file grow.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>

namespace convnet {

/// Why a file was not read; `detail` is for the message ("a FIFO", "No such file or directory").
struct FileRefusal {
  enum class Kind { CannotOpen, NotRegular, TooBig, ReadError } kind;
  std::string detail;
  std::uint64_t size = 0;  ///< TooBig: the size seen
};

namespace detail {
inline const char* file_kind(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}
/// A file opened for reading without blocking (a FIFO's open would wait for a writer forever) and
/// checked on the opened descriptor to be a regular file; closed when it goes.
struct RegularFile {
  int fd = -1;
  std::uint64_t size = 0;
  RegularFile() = default;
  RegularFile(const RegularFile&) = delete;
  RegularFile& operator=(const RegularFile&) = delete;
  ~RegularFile() {
    if (fd >= 0) ::close(fd);
  }
  std::optional<FileRefusal> open(const std::string& path) {
    fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return FileRefusal{FileRefusal::Kind::CannotOpen, std::strerror(errno)};
    struct stat st {};
    if (::fstat(fd, &st) != 0) return FileRefusal{FileRefusal::Kind::CannotOpen, std::strerror(errno)};
    if (!S_ISREG(st.st_mode)) return FileRefusal{FileRefusal::Kind::NotRegular, file_kind(st.st_mode)};
    size = static_cast<std::uint64_t>(st.st_size);
    return std::nullopt;
  }
};
}  // namespace detail

/// Reads the regular file at `path` into `out` (a std::string or a std::vector of bytes; at most
/// `max_bytes`); on refusal returns why and leaves `out` empty.
template <class Bytes>
std::optional<FileRefusal> read_regular_file(const std::string& path, std::uint64_t max_bytes, Bytes& out) {
  out.clear();
  detail::RegularFile file;
  if (auto refusal = file.open(path)) return refusal;
  const int fd = file.fd;
  const auto size = file.size;
  if (size > max_bytes) return FileRefusal{FileRefusal::Kind::TooBig, "", size};
  out.resize(static_cast<std::size_t>(size));
  std::size_t got = 0;
  auto failed = [&](int error) {
    out.clear();
    return FileRefusal{FileRefusal::Kind::ReadError, std::strerror(error)};
  };
  for (;;) {
    if (got == out.size()) {  // at the size fstat gave (or the limit): one byte more says whether it grew
      char probe;
      const ssize_t n = ::read(fd, &probe, 1);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return failed(errno);
      if (n == 0) break;
      if (out.size() >= max_bytes) {
        out.clear();
        return FileRefusal{FileRefusal::Kind::TooBig, "", max_bytes + 1};
      }
      out.resize(static_cast<std::size_t>(std::min<std::uint64_t>(max_bytes, out.size() + 65536)));
      reinterpret_cast<char*>(out.data())[got++] = probe;
      continue;
    }
    const ssize_t n = ::read(fd, reinterpret_cast<char*>(out.data()) + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return failed(errno);
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  out.resize(got);
  return std::nullopt;
}

/// The first `count` bytes (fewer when the file is shorter) of the regular file at `path`: a header
/// without reading the whole file. On refusal returns why and leaves `out` empty.
inline std::optional<FileRefusal> read_regular_file_prefix(const std::string& path, std::size_t count, std::string& out) {
  out.clear();
  detail::RegularFile file;
  if (auto refusal = file.open(path)) return refusal;
  const int fd = file.fd;
  out.resize(count);
  std::size_t got = 0;
  while (got < count) {
    const ssize_t n = ::pread(fd, &out[got], count - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      out.clear();
      return FileRefusal{FileRefusal::Kind::ReadError, std::strerror(errno)};
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  out.resize(got);
  return std::nullopt;
}

/// "is a FIFO, not a regular file", "is 12 bytes, over the limit of 10 bytes (LIMIT)", ... for a
/// message that starts with what the file is and its path.
inline std::string refusal_text(const FileRefusal& r, std::uint64_t max_bytes, const std::string& limit_name) {
  switch (r.kind) {
    case FileRefusal::Kind::CannotOpen: return "cannot be opened: " + r.detail;
    case FileRefusal::Kind::NotRegular: return "is " + r.detail + ", not a regular file";
    case FileRefusal::Kind::TooBig:
      return (r.size > max_bytes && r.size == max_bytes + 1 ? "is more than " + std::to_string(max_bytes)
                                                             : "is " + std::to_string(r.size)) +
             " bytes, over the limit of " + std::to_string(max_bytes) + " bytes (" + limit_name + ")";
    case FileRefusal::Kind::ReadError: return "could not be read: " + r.detail;
  }
  return "could not be read";
}

}  // namespace convnet
