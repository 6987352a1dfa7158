// Reading a whole file into memory, bounded: the size is checked before the
// buffer is allocated, and a pipe (whose size cannot be known) is cut off at
// the limit instead of filling memory.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "../errors.hpp"
#include "image.hpp"

namespace convnet {

/// The bytes of the file at `path`, refused (DataError) beyond `max_bytes` - also when the file is a
/// pipe or grows while it is read, whose size cannot be known in advance. `limit` names the setting
/// that gave `max_bytes` in the message.
inline std::vector<std::uint8_t> read_file_bytes(const std::string& path, Index max_bytes, const char* what = "file",
                                                 const char* limit = "ImageLimits::max_file_bytes") {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw DataError(detail::concat("cannot read ", what, " ", path, ": no such file or not readable"));
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> closer(f, std::fclose);
  auto too_big = [&](const std::string& size) {
    return DataError(detail::concat(what, " ", path, " is ", size, " bytes, over the limit of ", max_bytes,
                                    " bytes (", limit, ")"));
  };
  long file_size = -1;
  if (std::fseek(f, 0, SEEK_END) == 0) file_size = std::ftell(f);
  std::clearerr(f);
  std::rewind(f);
  if (file_size > max_bytes) throw too_big(std::to_string(file_size));
  std::vector<std::uint8_t> bytes;
  bytes.reserve(file_size > 0 ? static_cast<std::size_t>(file_size) : 0);
  std::uint8_t chunk[65536];
  for (std::size_t got; (got = std::fread(chunk, 1, sizeof chunk, f)) > 0;) {
    bytes.insert(bytes.end(), chunk, chunk + got);
    if (static_cast<Index>(bytes.size()) > max_bytes) throw too_big("more than " + std::to_string(max_bytes));
  }
  if (std::ferror(f)) throw DataError(detail::concat("cannot read ", what, " ", path, ": read error"));
  return bytes;
}

}  // namespace convnet
