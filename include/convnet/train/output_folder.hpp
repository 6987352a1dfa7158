// The output folder of a run: made, probed for writing and for room before any training, so a
// run that could not save its checkpoints fails at once, not hours later.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "../errors.hpp"
#include "../models/sequential.hpp"

namespace convnet {

/// Makes `folder` (and its parents), checks that a file can be written there and
/// that `bytes_needed` are free: a run learns of a full or read-only disk at
/// its start, not after an hour of training.
inline void prepare_output_folder(const std::string& folder, std::uintmax_t bytes_needed = 0) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(folder, ec);
  if (ec) throw DataError("cannot create output folder " + folder + ": " + ec.message());
  const fs::path probe = fs::path(folder) / ".write-test";
  {
    std::ofstream f(probe);
    f << "ok";
    if (!f.flush()) throw DataError("output folder " + folder + " is not writable");
  }
  fs::remove(probe, ec);
  const fs::space_info space = fs::space(folder, ec);
  if (!ec && space.available < bytes_needed) {
    throw DataError(detail::concat("output folder ", folder, " has ", space.available >> 20,
                                            " MiB free; the checkpoints of this network need about ",
                                            bytes_needed >> 20, " MiB"));
  }
}

/// One run per output folder: an exclusive lock (flock) on <folder>/.convnet.lock, held while the
/// object lives, with the holder's pid in the file. The system drops the lock when its process ends,
/// however it ends (SIGKILL too), so a stale lock file never blocks a later run.
class OutputFolderLock {
 public:
  /// Makes `folder` if needed and takes its lock; DataError naming the holder's pid when another
  /// process holds it.
  explicit OutputFolderLock(const std::string& folder) : path_((std::filesystem::path(folder) / ".convnet.lock").string()) {
    std::error_code ec;
    std::filesystem::create_directories(folder, ec);
    if (ec) throw DataError("cannot create output folder " + folder + ": " + ec.message());
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0666);
    if (fd_ < 0) throw DataError("cannot open the lock file " + path_ + ": " + std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      const int error = errno;
      char pid[32] = {};
      const ssize_t n = ::pread(fd_, pid, sizeof pid - 1, 0);
      ::close(fd_);
      fd_ = -1;
      if (error == EWOULDBLOCK) {
        throw DataError("output folder " + folder + " is in use by another run (pid " +
                        (n > 0 ? std::string(pid, static_cast<std::size_t>(n)) : std::string("unknown")) + ", " + path_ +
                        "); give this run another --out, or stop that one");
      }
      throw DataError("cannot lock " + path_ + ": " + std::strerror(error));
    }
    const std::string pid = std::to_string(::getpid());
    if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
      // the lock holds without the pid; only the message of a refused run loses it
    }
  }
  ~OutputFolderLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }
  OutputFolderLock(const OutputFolderLock&) = delete;
  OutputFolderLock& operator=(const OutputFolderLock&) = delete;

 private:
  std::string path_;
  int fd_ = -1;
};

/// The files a run writes in its output folder (each through the atomic writer).
inline const std::vector<std::string>& run_output_names() {
  static const std::vector<std::string> names = {"last.ckpt",  "best.ckpt",   "best_average.ckpt", "metrics.csv",
                                                 "timing.csv", "curves.png", "report.txt",      "confusion.png"};
  return names;
}

/// Removes the temporary files an interrupted write of this program left in `folder`
/// ("<output>.tmp.XXXXXX", for the outputs above); returns how many. Call it holding the folder's
/// lock, so that no write of another run is under way.
inline int remove_stale_temporaries(const std::string& folder) {
  namespace fs = std::filesystem;
  std::error_code ec;
  int removed = 0;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    for (const std::string& output : run_output_names()) {
      const std::size_t n = output.size();
      if (name.size() == n + 11 && name.compare(0, n, output) == 0 && name.compare(n, 5, ".tmp.") == 0 &&
          it->is_regular_file(ec) && !it->is_symlink(ec)) {
        std::error_code remove_error;
        if (fs::remove(it->path(), remove_error)) ++removed;
      }
    }
  }
  return removed;
}

/// About what last.ckpt, its temporary copy while it is rewritten, and best.ckpt take on disk:
/// the parameters and up to two optimizer buffers each (Adam), in float.
template <class T>
std::uintmax_t checkpoint_bytes(Sequential<T>& net) {
  return static_cast<std::uintmax_t>(net.parameter_count()) * 4 * 3 * 3 + (4u << 20);
}

}  // namespace convnet
