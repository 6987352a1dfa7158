// What resuming a run needs besides the checkpoint itself, checked before any data is read.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <system_error>

#include "../checkpoint/atomic_file.hpp"
#include "../checkpoint/format.hpp"
#include "../errors.hpp"
#include "../regular_file.hpp"
#include "history.hpp"

namespace convnet {

/// What ensure_best_checkpoint found or did, for the banner ("" when there was nothing to say).
struct BestCheckpointCheck {
  std::string note;
};

/// A resumed run ends with a report on best.ckpt (the best epoch so far), so the output folder `out`
/// must hold the best.ckpt of *this* run. last.ckpt (`resume`, read from `resume_path`) records
/// which: the epoch and the checksum of the best.ckpt written with it (trainer/best). In order:
/// out/best.ckpt with that checksum is taken as it is; else the one beside `resume_path`, if it has
/// that checksum, is copied to out atomically; else, when last.ckpt stands exactly at the end of the
/// best epoch, best.ckpt is rebuilt from it (the two were the same state) and `resume` records the
/// new file; else DataError naming what is missing or foreign. Nothing is needed before the first
/// epoch has ended. Checkpoints of convnet 0.2 and older (no trainer/best) need a best.ckpt in out or
/// beside, as then.
inline BestCheckpointCheck ensure_best_checkpoint(const std::string& out, const std::string& resume_path,
                                                  Checkpoint& resume) {
  namespace fs = std::filesystem;
  const std::size_t epochs_done = stored_epochs(resume);
  const fs::path best = fs::path(out) / "best.ckpt", beside = fs::path(resume_path).parent_path() / "best.ckpt";
  std::error_code ec;
  const bool same_folder = fs::equivalent(fs::path(out), beside.parent_path(), ec);
  if (epochs_done == 0) return {};
  auto copy_beside = [&] {
    std::string bytes;
    if (const auto refusal = read_regular_file(beside.string(), CheckpointLimits().max_file_bytes(), bytes)) {
      throw DataError("cannot copy " + beside.string() + ": " + refusal_text(*refusal, CheckpointLimits().max_file_bytes(),
                                                                            "CheckpointLimits::max_file_bytes"));
    }
    fs::create_directories(out, ec);
    if (const auto error = write_file_atomically(best.string(), bytes)) {
      throw DataError("cannot write " + error->file + ": " + error->reason);
    }
  };
  if (!resume.contains("trainer/best")) {  // convnet 0.2 and older
    if (fs::exists(best, ec)) return {};
    if (!fs::exists(beside, ec)) {
      throw DataError("cannot resume " + resume_path + ": " + best.string() +
                      ", the best epoch so far (the final report reads it), is missing; copy it there or "
                      "resume in the folder of the interrupted run");
    }
    copy_beside();
    return {"copied " + beside.string() + " to " + best.string()};
  }
  const auto& record = resume.u64s("trainer/best");
  if (record.size() != 2) throw DataError(resume.source() + ": trainer/best must be (epoch, checksum)");
  const std::uint64_t best_epoch = record[0], checksum = record[1];
  if (Checkpoint::stored_checksum(best.string()) == checksum) return {};
  if (!same_folder && Checkpoint::stored_checksum(beside.string()) == checksum) {
    copy_beside();
    return {"copied " + beside.string() + " to " + best.string()};
  }
  const auto& position = resume.u64s("trainer/position");
  const bool at_best_epoch = position.size() == 2 && position[0] == best_epoch && position[1] == 0;
  const bool present = fs::exists(best, ec);
  if (at_best_epoch) {
    resume.remove("trainer/best");  // best.ckpt does not name itself (no copy of a file that may be large)
    const std::uint64_t written = resume.save(best.string());
    resume.set_u64s("trainer/best", {best_epoch, written});
    return {detail::concat(present ? "replaced " : "rebuilt missing ", best.string(),
                           present ? " (another run's)" : "", " from ", resume_path, ", which is its epoch ", best_epoch)};
  }
  throw DataError(detail::concat("cannot resume ", resume_path, ": ", best.string(),
                                 present ? " is not the best.ckpt of this run (its checksum differs from the one "
                                           "last.ckpt records)"
                                         : " is missing",
                                 ", and last.ckpt has moved past the best epoch (", best_epoch,
                                 ") so it cannot be rebuilt; copy this run's best.ckpt there or resume in the folder "
                                 "of the interrupted run"));
}

}  // namespace convnet
