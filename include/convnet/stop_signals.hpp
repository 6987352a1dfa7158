// Stopping a long run cleanly on SIGINT (Ctrl-C) and SIGTERM (what schedulers,
// `kill` and `docker stop` send), alike:
//
//   StopSignals signals;               // installs the handlers; the destructor restores the old ones
//   trainer.stop_on(signals.flag());   // the trainer stops at the next batch, training or evaluating
//   trainer.fit(train, &validation);   // ... and saves last.ckpt
//   if (signals.received()) return signals.exit_status();  // 130 for SIGINT, 143 for SIGTERM
//
// The first signal only sets a flag (all a handler may safely do); a second one
// ends the process at once with the same status, for a run that must not wait
// for its batch or its checkpoint.
#pragma once

#include <atomic>
#include <csignal>
#include <stdexcept>

#include <unistd.h>

#include "errors.hpp"

namespace convnet {

class StopSignals {
 public:
  StopSignals() {
    if (active().exchange(true)) throw StateError("StopSignals: only one may be installed at a time");
    stop_flag().store(false);
    signal_number().store(0);
    struct sigaction action {};
    action.sa_handler = &StopSignals::handle;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;  // reads and writes in progress carry on; the flag is polled per batch
    sigaction(SIGINT, &action, &old_int_);
    sigaction(SIGTERM, &action, &old_term_);
  }
  ~StopSignals() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
    active().store(false);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  /// Set by the first signal; what a Trainer (stop_on) or a loop of one's own polls.
  const std::atomic<bool>& flag() const { return stop_flag(); }
  bool received() const { return stop_flag().load(); }
  /// The signal received (SIGINT or SIGTERM), 0 before one.
  int signal() const { return signal_number().load(); }
  /// 128 + the signal, what a shell reports for a program a signal ended: 130 for SIGINT, 143 for SIGTERM.
  int exit_status() const { return 128 + signal(); }
  /// The same, without an object (for a callback that may outlive it): 128 + the last signal received.
  static int last_exit_status() { return 128 + signal_number().load(); }

 private:
  static std::atomic<bool>& stop_flag() {
    static std::atomic<bool> f{false};
    return f;
  }
  static std::atomic<int>& signal_number() {
    static std::atomic<int> s{0};
    return s;
  }
  static std::atomic<bool>& active() {
    static std::atomic<bool> a{false};
    return a;
  }
  // Async-signal-safe only: lock-free atomics, write(2) and _exit(2).
  static void handle(int sig) {
    if (stop_flag().load()) {
      static const char message[] = "\nsecond signal: exiting without saving\n";
      [[maybe_unused]] const ssize_t n = ::write(STDERR_FILENO, message, sizeof message - 1);
      ::_exit(128 + sig);
    }
    signal_number().store(sig);  // before the flag: whoever sees the flag sees which signal
    stop_flag().store(true);
  }

  struct sigaction old_int_ {}, old_term_ {};
};

static_assert(std::atomic<bool>::is_always_lock_free && std::atomic<int>::is_always_lock_free,
              "signal handlers may only touch lock-free atomics");

}  // namespace convnet
