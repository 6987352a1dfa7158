// Fetching CIFAR-10's official binary tarball: curl downloads it, md5sum checks
// it, tar unpacks it. Each runs from an argument vector (fork + execvp), never
// through a shell, so no folder name can become a command.
#pragma once

#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "../errors.hpp"

namespace convnet {

inline constexpr const char* kCifar10Url = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
inline constexpr const char* kCifar10Md5 = "c32a1d4ab5d03f1284b67883e8d87530";

/// True when `dir` holds the files Cifar10Dataset reads.
inline bool cifar10_present(const std::string& dir) {
  namespace fs = std::filesystem;
  return fs::exists(fs::path(dir) / "test_batch.bin") && fs::exists(fs::path(dir) / "data_batch_1.bin") &&
         fs::exists(fs::path(dir) / "batches.meta.txt");
}

/// What to tell someone whose `dir` has no CIFAR-10: where to get it and how to point at it.
inline std::string cifar10_missing_message(const std::string& dir) {
  return "no CIFAR-10 in " + dir + "\n  Get the binary version: " + kCifar10Url + " (MD5 " + kCifar10Md5 +
         "),\n  unpack it and pass --data path/to/cifar-10-batches-bin (or set CIFAR10_DIR),\n"
         "  or add --download to fetch it into " + dir + ".";
}

namespace detail {
/// Runs a program with `args` (no shell); its exit status, and what it printed when `output` is given.
inline int run_program(const std::vector<std::string>& args, std::string* output = nullptr) {
  std::vector<char*> argv;  // built before fork: the child only calls async-signal-safe functions
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  int fds[2] = {-1, -1};
  if (output && ::pipe(fds) != 0) throw SystemError("cannot create a pipe for " + args.at(0));
  const pid_t child = ::fork();
  if (child < 0) throw SystemError("cannot start " + args.at(0));
  if (child == 0) {
    if (output) {
      ::dup2(fds[1], STDOUT_FILENO);
      ::close(fds[0]);
    }
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  if (output) {
    ::close(fds[1]);
    char buffer[4096];
    for (ssize_t n; (n = ::read(fds[0], buffer, sizeof buffer)) > 0;) output->append(buffer, static_cast<std::size_t>(n));
    ::close(fds[0]);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
}  // namespace detail

/// Downloads the tarball next to `dir`, checks its MD5 and unpacks it as `dir`.
inline void download_cifar10(const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path target(dir);
  const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
  fs::create_directories(parent);
  const std::string tarball = (parent / "cifar-10-binary.tar.gz").string();
  std::printf("downloading %s to %s\n", kCifar10Url, tarball.c_str());
  std::fflush(stdout);
  if (detail::run_program({"curl", "-fL", "--retry", "3", "-o", tarball, kCifar10Url}) != 0) {
    throw DataError(std::string("download failed (curl); fetch ") + kCifar10Url + " by hand");
  }
  std::string sum;
  if (detail::run_program({"md5sum", "--", tarball}, &sum) != 0 || sum.rfind(kCifar10Md5, 0) != 0) {
    throw DataError(tarball + " does not have the expected MD5 " + kCifar10Md5);
  }
  if (detail::run_program({"tar", "-xzf", tarball, "-C", parent.string()}) != 0) {
    throw DataError("cannot unpack " + tarball);
  }
  const fs::path unpacked = parent / "cifar-10-batches-bin";
  if (fs::absolute(unpacked) != fs::absolute(target)) fs::rename(unpacked, target);
}

}  // namespace convnet
