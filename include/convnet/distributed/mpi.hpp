// MPI for data-parallel training (the optional CMake target convnet::mpi,
// there when find_package(MPI) succeeds; Debian: libopenmpi-dev, openmpi-bin).
//
//   int main(int argc, char** argv) {
//     convnet::mpi::Environment mpi(argc, argv);
//     convnet::mpi::Communicator world;
//     return convnet::mpi::run_or_abort(world, [&] {
//       ...
//       trainer.distribute(world);   // trainer.hpp: broadcast, sharded batches, bucketed sums
//       trainer.fit(loader, &validation);
//       return 0;
//     });
//   }
//
// Failure: an exception on any rank is printed with the rank's number and ends
// the whole job through MPI_Abort (the other ranks may be waiting in a sum for
// it: they would never return). Open MPI's mpirun ends the job too when a
// process dies of a signal. A rank that stops answering without dying (stuck
// on a picture, a full disk, a debugger) is caught by the waits themselves:
// every collective is started non-blocking and waited for by polling, so a
// wait ends after CollectiveWatch::timeout_seconds naming the late rank, or
// after a stop request (SIGINT/SIGTERM) that the others cannot answer. To name
// it, each rank tells rank 0 (and rank 0 tells each) the number of every
// collective it enters, on a communicator of its own: 8-byte messages, never
// waited for.
//
// Threads: MPI is called from the thread that trains only (MPI_THREAD_FUNNELED);
// OpenMP's threads compute inside layers and never call it.
#pragma once

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "../errors.hpp"
#include "process_group.hpp"

namespace convnet::mpi {

namespace detail {
inline void check(int code, const char* call) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw SystemError(std::string(call) + " failed: " + std::string(text, static_cast<std::size_t>(length)));
}

/// MPI counts are ints: a larger buffer goes in several calls.
constexpr Index kMaxCount = std::numeric_limits<int>::max();
}  // namespace detail

/// Whether this process was started by mpirun (Open MPI, or a PMI launcher such as srun).
inline bool launched_by_mpirun() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"}) {
    if (std::getenv(name) != nullptr) return true;
  }
  return false;
}

/// MPI_Init_thread on construction (unless MPI is already initialised), MPI_Finalize on destruction.
class Environment {
 public:
  Environment(int& argc, char**& argv) {
    int initialised = 0;
    MPI_Initialized(&initialised);
    if (initialised) return;
    int provided = 0;
    detail::check(MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    owns_ = true;
    if (provided < MPI_THREAD_FUNNELED) {
      MPI_Finalize();
      throw SystemError("MPI: this MPI library does not allow threads (MPI_THREAD_FUNNELED)");
    }
  }
  ~Environment() {
    int finalised = 0;
    MPI_Finalized(&finalised);
    if (owns_ && !finalised) MPI_Finalize();
  }
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;

 private:
  bool owns_ = false;
};

/// A ProcessGroup over an MPI communicator (a duplicate, so our messages never meet the program's own).
class Communicator : public ProcessGroup {
 public:
  explicit Communicator(MPI_Comm comm = MPI_COMM_WORLD) {
    detail::check(MPI_Comm_dup(comm, &comm_), "MPI_Comm_dup");
    detail::check(MPI_Comm_dup(comm, &presence_), "MPI_Comm_dup");
    // Errors come back as codes, which become exceptions naming the call.
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    MPI_Comm_set_errhandler(presence_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    const auto n = static_cast<std::size_t>(size_);
    seen_.assign(n, 0);
    heard_.assign(n, 0);
    told_.assign(n, 0);
    told_request_.assign(n, MPI_REQUEST_NULL);
    heard_request_.assign(n, MPI_REQUEST_NULL);
    for (int peer : peers()) post_receive(peer);
  }
  ~Communicator() override { release(); }
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  /// The processes of this one with the same `colour`, in rank order (MPI_Comm_split).
  Communicator split(int colour) const {
    MPI_Comm part;
    detail::check(MPI_Comm_split(comm_, colour, rank_, &part), "MPI_Comm_split");
    Communicator result(part);
    MPI_Comm_free(&part);
    return result;
  }
  Communicator(Communicator&& other) noexcept
      : comm_(std::exchange(other.comm_, MPI_COMM_NULL)), presence_(std::exchange(other.presence_, MPI_COMM_NULL)),
        rank_(other.rank_), size_(other.size_), requests_(std::move(other.requests_)), watch_(other.watch_),
        sequence_(other.sequence_), seen_(std::move(other.seen_)), heard_(std::move(other.heard_)),
        told_(std::move(other.told_)), told_request_(std::move(other.told_request_)),
        heard_request_(std::move(other.heard_request_)) {}

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  MPI_Comm comm() const { return comm_; }
  void set_watch(const CollectiveWatch& watch) override { watch_ = watch; }
  const CollectiveWatch& watch() const { return watch_; }

  void broadcast(void* data, std::size_t bytes, int root) override {
    auto* p = static_cast<char*>(data);
    for (std::size_t done = 0; done < bytes;) {
      const int n = static_cast<int>(std::min<std::size_t>(bytes - done, static_cast<std::size_t>(detail::kMaxCount)));
      MPI_Request r = MPI_REQUEST_NULL;
      announce();
      detail::check(MPI_Ibcast(p + done, n, MPI_BYTE, root, comm_, &r), "MPI_Ibcast");
      wait_for(&r, 1, "MPI_Ibcast");
      done += static_cast<std::size_t>(n);
    }
  }
  void allreduce_sum(double* data, Index count) override { blocking_sum(data, count, MPI_DOUBLE); }
  void allreduce_sum(float* data, Index count) override { blocking_sum(data, count, MPI_FLOAT); }
  bool all_equal(std::uint64_t value) override {
    unsigned long long bounds[2] = {value, ~static_cast<unsigned long long>(value)};  // max of v and of ~v: max and min
    MPI_Request r = MPI_REQUEST_NULL;
    announce();
    detail::check(MPI_Iallreduce(MPI_IN_PLACE, bounds, 2, MPI_UNSIGNED_LONG_LONG, MPI_MAX, comm_, &r), "MPI_Iallreduce");
    wait_for(&r, 1, "MPI_Iallreduce");
    return bounds[0] == ~bounds[1];
  }

  Request start_allreduce_sum(float* data, Index count) override { return start_sum(data, count, MPI_FLOAT); }
  Request start_allreduce_sum(double* data, Index count) override { return start_sum(data, count, MPI_DOUBLE); }
  bool test(Request request) override {
    bool done = true;
    for (MPI_Request& r : requests_.at(request).parts) {
      if (r == MPI_REQUEST_NULL) continue;
      int flag = 0;
      detail::check(MPI_Test(&r, &flag, MPI_STATUS_IGNORE), "MPI_Test");
      done = done && flag != 0;
    }
    poll_presence();
    if (done) requests_[request].in_use = false;
    return done;
  }
  void wait(Request request) override {
    Pending& pending = requests_.at(request);
    wait_for(pending.parts.data(), static_cast<int>(pending.parts.size()), "MPI_Iallreduce");
    pending.in_use = false;
  }

  /// The number of collectives this rank has entered (what it tells the others).
  std::uint64_t collectives() const { return sequence_; }

 private:
  struct Pending {
    std::vector<MPI_Request> parts;  // one per int-sized piece
    bool in_use = false;
  };
  static constexpr int kPresenceTag = 7;

  // Rank 0 hears from every rank and tells every rank; the others hear from and tell rank 0 only.
  std::vector<int> peers() const {
    std::vector<int> out;
    if (rank_ == 0) {
      for (int r = 1; r < size_; ++r) out.push_back(r);
    } else if (size_ > 1) {
      out.push_back(0);
    }
    return out;
  }
  void post_receive(int peer) {
    auto& slot = heard_request_[static_cast<std::size_t>(peer)];
    detail::check(MPI_Irecv(&heard_[static_cast<std::size_t>(peer)], 1, MPI_UINT64_T, peer, kPresenceTag, presence_, &slot),
                  "MPI_Irecv");
  }
  // A new collective: its number goes to the peers (when the previous message to one has gone; else
  // poll_presence sends the newest later: only the newest matters).
  void announce() {
    ++sequence_;
    poll_presence();
  }
  void poll_presence() {
    for (int peer : peers()) {
      const auto p = static_cast<std::size_t>(peer);
      int flag = 0;
      if (heard_request_[p] != MPI_REQUEST_NULL) {
        detail::check(MPI_Test(&heard_request_[p], &flag, MPI_STATUS_IGNORE), "MPI_Test");
        if (flag) {
          seen_[p] = std::max(seen_[p], heard_[p]);
          post_receive(peer);
        }
      }
      if (told_request_[p] != MPI_REQUEST_NULL) {
        detail::check(MPI_Test(&told_request_[p], &flag, MPI_STATUS_IGNORE), "MPI_Test");
      }
      if (told_request_[p] == MPI_REQUEST_NULL && told_[p] < sequence_) {
        told_[p] = sequence_;
        detail::check(MPI_Isend(&told_[p], 1, MPI_UINT64_T, peer, kPresenceTag, presence_, &told_request_[p]), "MPI_Isend");
      }
    }
  }

  // Who has not reached collective number sequence_, as far as this rank knows.
  std::string late_ranks() const {
    std::string out;
    for (int peer : peers()) {
      const auto p = static_cast<std::size_t>(peer);
      if (seen_[p] < sequence_) {
        out += ::convnet::detail::concat(out.empty() ? "" : ", ", "rank ", peer, " (its last was collective #", seen_[p], ")");
      }
    }
    return out;
  }

  // Polls until every request completes, the watch's deadline passes (CollectiveTimeout naming the
  // late rank) or a stop request goes unanswered for its grace (CollectiveStopped).
  void wait_for(MPI_Request* requests, int count, const char* what) {
    const double start = watch_.now();
    double stop_seen = 0;
    bool stopping = false;
    for (;;) {
      int done = 0;
      detail::check(MPI_Testall(count, requests, &done, MPI_STATUSES_IGNORE), "MPI_Testall");
      if (done) return;
      poll_presence();
      const double now = watch_.now();
      const double waited = now - start;
      if (!stopping && watch_.stop_flag() != nullptr && watch_.stop_flag()->load()) {
        stopping = true;
        stop_seen = now;
      }
      if (stopping && now - stop_seen >= watch_.stop_grace_seconds()) {
        const std::string late = late_ranks();
        throw CollectiveStopped(::convnet::detail::concat(
                                    "stopped by a signal while ", what, " (collective #", sequence_, ") waited ",
                                    static_cast<long>(waited), " s for ", late.empty() ? "the other ranks" : late,
                                    "; the checkpoints written so far stay, the step under way is lost"),
                                watch_.exit_status_now());
      }
      // Rank 0 knows every rank's progress; the others wait a little longer when rank 0 has come, so
      // that rank 0, which can name the late rank, speaks first.
      const bool root_came = rank_ != 0 && seen_[0] >= sequence_;
      const double deadline = watch_.timeout_seconds() * (root_came ? 1.1 : 1.0) + (root_came ? 2.0 : 0.0);
      const bool timed_out = watch_.timeout_seconds() > 0 && waited > deadline;
      if (timed_out || watch_.declared_late()) {
        const std::string late = late_ranks();
        throw CollectiveTimeout(::convnet::detail::concat(
            what, " (collective #", sequence_, ") has waited ", static_cast<long>(waited), " s, ",
            timed_out ? ::convnet::detail::concat("over the collective timeout of ", watch_.timeout_seconds(), " s")
                      : std::string("and the watch declared it late"),
            ": ", late.empty() ? (rank_ == 0 ? std::string("every rank reached it, but it did not complete")
                                       : std::string("rank 0 reached it; another rank is late"))
                         : late + " has not reached it"));
      }
      // Open MPI moves a large sum only inside its calls, so polling does not pause while a sum can
      // still be under way; a wait past a second is a rank that is late, polled without burning a core.
      if (waited > 1.0) {
        const timespec pause{0, 1'000'000};
        ::nanosleep(&pause, nullptr);
      }
    }
  }

  template <class T>
  void blocking_sum(T* data, Index count, MPI_Datatype type) {
    for (Index done = 0; done < count;) {
      const int n = static_cast<int>(std::min(count - done, detail::kMaxCount));
      MPI_Request r = MPI_REQUEST_NULL;
      announce();
      detail::check(MPI_Iallreduce(MPI_IN_PLACE, data + done, n, type, MPI_SUM, comm_, &r), "MPI_Iallreduce");
      wait_for(&r, 1, "MPI_Iallreduce");
      done += n;
    }
  }

  // Handles are reused slots, so a steady state of training allocates nothing here.
  template <class T>
  Request start_sum(T* data, Index count, MPI_Datatype type) {
    std::size_t slot = 0;
    while (slot < requests_.size() && requests_[slot].in_use) ++slot;
    if (slot == requests_.size()) requests_.emplace_back();
    Pending& pending = requests_[slot];
    pending.in_use = true;
    pending.parts.clear();
    announce();
    for (Index done = 0; done < count;) {
      const int n = static_cast<int>(std::min(count - done, detail::kMaxCount));
      pending.parts.push_back(MPI_REQUEST_NULL);
      detail::check(MPI_Iallreduce(MPI_IN_PLACE, data + done, n, type, MPI_SUM, comm_, &pending.parts.back()),
                    "MPI_Iallreduce");
      done += n;
    }
    return slot;
  }

  // The presence messages end with the communicator: every rank first waits for the others (so no
  // message is still on its way to a receive about to be cancelled), then cancels its receives.
  void release() noexcept {
    int finalised = 0;
    MPI_Finalized(&finalised);
    if (finalised || comm_ == MPI_COMM_NULL) return;
    // No deadline here: rank 0 may still be writing its report while the others end.
    watch_ = CollectiveWatch().no_deadline();
    try {
      MPI_Request barrier = MPI_REQUEST_NULL;
      if (MPI_Ibarrier(presence_, &barrier) == MPI_SUCCESS) wait_for(&barrier, 1, "MPI_Ibarrier");
    } catch (...) {  // a rank gone: the job is ending anyway
    }
    for (MPI_Request& r : told_request_) {
      if (r != MPI_REQUEST_NULL) MPI_Wait(&r, MPI_STATUS_IGNORE);
    }
    for (MPI_Request& r : heard_request_) {
      if (r == MPI_REQUEST_NULL) continue;
      MPI_Cancel(&r);
      MPI_Wait(&r, MPI_STATUS_IGNORE);
    }
    MPI_Comm_free(&presence_);
    MPI_Comm_free(&comm_);
  }

  MPI_Comm comm_ = MPI_COMM_NULL, presence_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  std::vector<Pending> requests_;
  CollectiveWatch watch_;
  std::uint64_t sequence_ = 0;
  std::vector<std::uint64_t> seen_, heard_, told_;  // per peer: newest number heard, receive buffer, newest told
  std::vector<MPI_Request> told_request_, heard_request_;
};

/// For a program that trains alone or, started by mpirun, data-parallel: MPI is
/// initialised only under mpirun, so the same binary runs as before without it.
class World {
 public:
  World(int& argc, char**& argv) {
    if (!launched_by_mpirun()) return;
    environment_.emplace(argc, argv);
    communicator_.emplace();
  }
  /// The processes training together (Trainer::distribute), or nullptr when this one is alone.
  Communicator* group() { return communicator_ && communicator_->size() > 1 ? &*communicator_ : nullptr; }
  int rank() const { return communicator_ ? communicator_->rank() : 0; }
  int size() const { return communicator_ ? communicator_->size() : 1; }
  /// After an error on this rank: ends every rank of the job (the others may be
  /// waiting for this one in a sum); does nothing for a process alone.
  void abort_job(int status = 1) {
    if (size() <= 1) return;
    std::fflush(stdout);
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, status);
  }

 private:
  std::optional<Environment> environment_;  // declared first: finalised after the communicator is freed
  std::optional<Communicator> communicator_;
};

/// Runs `body` (returning the exit status); an exception is printed as
/// "convnet: rank R of N failed: <reason>" and ends every rank of the job.
template <class Body>
int run_or_abort(const Communicator& world, Body&& body) {
  int status = 1;
  try {
    return body();
  } catch (const CollectiveStopped& e) {
    std::fprintf(stderr, "convnet: rank %d of %d: %s\n", world.rank(), world.size(), e.what());
    status = e.exit_status();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "convnet: rank %d of %d failed: %s\n", world.rank(), world.size(), e.what());
  } catch (...) {
    std::fprintf(stderr, "convnet: rank %d of %d failed: an unknown exception\n", world.rank(), world.size());
  }
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, status);
  return status;
}

}  // namespace convnet::mpi
