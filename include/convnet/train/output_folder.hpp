// The output folder of a run: made, probed for writing and for room before any training, so a
// run that could not save its checkpoints fails at once, not hours later.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

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

/// About what last.ckpt, its temporary copy while it is rewritten, and best.ckpt take on disk:
/// the parameters and up to two optimizer buffers each (Adam), in float.
template <class T>
std::uintmax_t checkpoint_bytes(Sequential<T>& net) {
  return static_cast<std::uintmax_t>(net.parameter_count()) * 4 * 3 * 3 + (4u << 20);
}

}  // namespace convnet
