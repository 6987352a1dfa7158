// What resuming a run needs besides the checkpoint itself, checked before any data is read.
#pragma once

#include <filesystem>
#include <string>
#include <system_error>

#include "../checkpoint/format.hpp"
#include "../errors.hpp"
#include "history.hpp"

namespace convnet {

/// A resumed run ends with a report on best.ckpt (the best epoch so far): it must be in the output
/// folder `out`, or beside the checkpoint `resume_path`, from where it is copied. Nothing is needed
/// before the first epoch has ended. Throws DataError naming the missing file.
inline void ensure_best_checkpoint(const std::string& out, const std::string& resume_path, const Checkpoint& resume) {
  namespace fs = std::filesystem;
  const bool any_epoch_done = stored_epochs(resume) > 0;
  const fs::path best = fs::path(out) / "best.ckpt", beside = fs::path(resume_path).parent_path() / "best.ckpt";
  std::error_code ec;
  if (!any_epoch_done || fs::exists(best, ec)) return;
  if (!fs::exists(beside, ec)) {
    throw DataError("cannot resume " + resume_path + ": " + best.string() +
                    ", the best epoch so far (the final report reads it), is missing; copy it there or "
                    "resume in the folder of the interrupted run");
  }
  fs::create_directories(out);
  fs::copy_file(beside, best);
}

}  // namespace convnet
