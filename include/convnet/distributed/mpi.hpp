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
// process dies of a signal.
//
// Threads: MPI is called from the thread that trains only (MPI_THREAD_FUNNELED);
// OpenMP's threads compute inside layers and never call it.
#pragma once

#include <mpi.h>

#include <cstdio>
#include <cstdlib>
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
    // Errors come back as codes, which become exceptions naming the call.
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
  }
  ~Communicator() override {
    int finalised = 0;
    MPI_Finalized(&finalised);
    if (!finalised) MPI_Comm_free(&comm_);
  }
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
      : comm_(std::exchange(other.comm_, MPI_COMM_NULL)), rank_(other.rank_), size_(other.size_),
        requests_(std::move(other.requests_)) {}

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  MPI_Comm comm() const { return comm_; }

  void broadcast(void* data, std::size_t bytes, int root) override {
    auto* p = static_cast<char*>(data);
    for (std::size_t done = 0; done < bytes;) {
      const int n = static_cast<int>(std::min<std::size_t>(bytes - done, static_cast<std::size_t>(detail::kMaxCount)));
      detail::check(MPI_Bcast(p + done, n, MPI_BYTE, root, comm_), "MPI_Bcast");
      done += static_cast<std::size_t>(n);
    }
  }
  void allreduce_sum(double* data, Index count) override { blocking_sum(data, count, MPI_DOUBLE); }
  void allreduce_sum(float* data, Index count) override { blocking_sum(data, count, MPI_FLOAT); }
  bool all_equal(std::uint64_t value) override {
    unsigned long long bounds[2] = {value, ~static_cast<unsigned long long>(value)};  // max of v and of ~v: max and min
    detail::check(MPI_Allreduce(MPI_IN_PLACE, bounds, 2, MPI_UNSIGNED_LONG_LONG, MPI_MAX, comm_), "MPI_Allreduce");
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
    if (done) requests_[request].in_use = false;
    return done;
  }
  void wait(Request request) override {
    for (MPI_Request& r : requests_.at(request).parts) {
      detail::check(MPI_Wait(&r, MPI_STATUS_IGNORE), "MPI_Wait");
    }
    requests_[request].in_use = false;
  }

 private:
  struct Pending {
    std::vector<MPI_Request> parts;  // one per int-sized piece
    bool in_use = false;
  };

  template <class T>
  void blocking_sum(T* data, Index count, MPI_Datatype type) {
    for (Index done = 0; done < count;) {
      const int n = static_cast<int>(std::min(count - done, detail::kMaxCount));
      detail::check(MPI_Allreduce(MPI_IN_PLACE, data + done, n, type, MPI_SUM, comm_), "MPI_Allreduce");
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
    for (Index done = 0; done < count;) {
      const int n = static_cast<int>(std::min(count - done, detail::kMaxCount));
      pending.parts.push_back(MPI_REQUEST_NULL);
      detail::check(MPI_Iallreduce(MPI_IN_PLACE, data + done, n, type, MPI_SUM, comm_, &pending.parts.back()),
                    "MPI_Iallreduce");
      done += n;
    }
    return slot;
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  std::vector<Pending> requests_;
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
  void abort_job() {
    if (size() <= 1) return;
    std::fflush(stdout);
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }

 private:
  std::optional<Environment> environment_;  // declared first: finalised after the communicator is freed
  std::optional<Communicator> communicator_;
};

/// Runs `body` (returning the exit status); an exception is printed as
/// "convnet: rank R of N failed: <reason>" and ends every rank of the job.
template <class Body>
int run_or_abort(const Communicator& world, Body&& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "convnet: rank %d of %d failed: %s\n", world.rank(), world.size(), e.what());
  } catch (...) {
    std::fprintf(stderr, "convnet: rank %d of %d failed: an unknown exception\n", world.rank(), world.size());
  }
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 1);
  return 1;
}

}  // namespace convnet::mpi
