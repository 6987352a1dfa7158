// Running programs from tests: shell commands with their output captured, and
// a child process that talks back through a pipe, for the tests that kill or
// interrupt programs. They synchronise on what the child says (a byte per
// completed save, a progress line), never on how long something should take,
// so a slow disk or a loaded machine changes how long they run, not whether
// they pass.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>
#include <sys/wait.h>
#include <unistd.h>

namespace convnet::testing {

class ChildProcess {
 public:
  /// Runs `body(fd)` in a forked child; the child writes its reports to fd and ends with _exit(0).
  explicit ChildProcess(const std::function<void(int)>& body) {
    start([&](int fd) {
      body(fd);
      ::_exit(0);
    });
  }

  /// Runs a program (no shell) with its standard output and error sent to the pipe.
  explicit ChildProcess(const std::vector<std::string>& argv) {
    std::vector<char*> args;  // built before fork: the child only calls async-signal-safe functions
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    start([&](int fd) {
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
      ::execv(args[0], args.data());
      ::_exit(127);
    });
  }

  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      wait();
    }
    if (fd_ >= 0) ::close(fd_);
  }

  /// The next byte the child wrote; false when the child has closed the pipe (exited or was killed).
  bool read_byte(char& c) {
    for (;;) {
      const ssize_t n = ::read(fd_, &c, 1);
      if (n == 1) return true;
      if (n == 0 || errno != EINTR) return false;
    }
  }

  /// The next line (without its newline), also echoed into output(); false at the end of the pipe.
  bool read_line(std::string& line) {
    line.clear();
    for (char c; read_byte(c);) {
      output_ += c;
      if (c == '\n') return true;
      line += c;
    }
    return !line.empty();
  }

  /// Everything up to the end of the pipe.
  std::string read_rest() {
    for (char c; read_byte(c);) output_ += c;
    return output_;
  }

  void signal(int sig) { ::kill(pid_, sig); }

  /// Waits for the child to end; its status as waitpid reports it.
  int wait() {
    if (pid_ > 0) {
      while (::waitpid(pid_, &status_, 0) < 0 && errno == EINTR) {
      }
      pid_ = -1;
    }
    return status_;
  }

  /// All the lines read so far.
  const std::string& output() const { return output_; }

 private:
  template <class F>
  void start(const F& child) {
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::close(fds[0]);
      child(fds[1]);
      ::_exit(127);
    }
    ::close(fds[1]);
    fd_ = fds[0];
  }

  pid_t pid_ = -1;
  int fd_ = -1;
  int status_ = 0;
  std::string output_;
};

/// The exit status and the output (standard output and error together) of a shell command.
struct Result {
  int status;
  std::string output;
};

/// Runs a shell command, capturing stdout and stderr.
inline Result run(const std::string& command) {
  std::string output;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  char buffer[4096];
  while (std::fgets(buffer, sizeof buffer, pipe)) output += buffer;
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

/// A whole file as text ("" when it cannot be read).
inline std::string read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline int lines(const std::string& text) { return static_cast<int>(std::count(text.begin(), text.end(), '\n')); }

/// A command line split at spaces (the tests' paths have none), for running a program without a shell.
inline std::vector<std::string> words(const std::string& command) {
  std::vector<std::string> out;
  std::istringstream in(command);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

/// The batch number of a trainer progress line ("  [###...] 3/17  812 img/s ..."), or 0 for any other line.
inline long progress_of(const std::string& line) {
  const auto bracket = line.find("] ");
  if (line.find(" img/s") == std::string::npos || bracket == std::string::npos) return 0;
  return std::stol(line.substr(bracket + 2));
}

/// Median of a few measured durations, in seconds.
inline double median_seconds(std::vector<double> seconds) {
  std::sort(seconds.begin(), seconds.end());
  return seconds[seconds.size() / 2];
}

/// Lets a random share of `seconds` pass before a kill: the kill moment is drawn relative to a
/// duration the test measured on this machine, so it lands inside the work on a fast or a slow one.
inline void let_pass(double seconds) {
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
}

}  // namespace convnet::testing
