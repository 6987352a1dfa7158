// Reading a whole file into memory, bounded: only a regular file is read (a FIFO, a device, a
// directory or a socket is refused naming the path, without blocking: regular_file.hpp), its size
// is checked before the buffer is allocated, and reading stops at the limit should it grow.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "../errors.hpp"
#include "../regular_file.hpp"
#include "image.hpp"

namespace convnet {

/// The bytes of the regular file at `path`, refused (DataError naming it) when it is anything else,
/// beyond `max_bytes`, or grows past it while read. `limit` names the setting that gave `max_bytes`.
inline std::vector<std::uint8_t> read_file_bytes(const std::string& path, Index max_bytes, const char* what = "file",
                                                 const char* limit = "ImageLimits::max_file_bytes") {
  std::vector<std::uint8_t> bytes;
  const auto max = static_cast<std::uint64_t>(std::max<Index>(0, max_bytes));
  if (const auto refusal = read_regular_file(path, max, bytes)) {
    if (refusal->kind == FileRefusal::Kind::CannotOpen) {
      throw DataError(detail::concat("cannot read ", what, " ", path, ": ", refusal->detail));
    }
    throw DataError(detail::concat(what, " ", path, " ", refusal_text(*refusal, max, limit)));
  }
  return bytes;
}

}  // namespace convnet
