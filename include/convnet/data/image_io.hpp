// Reading and writing pictures through stb (Debian's libstb-dev).
//
// decode_image() reads JPEG, PNG, BMP, TGA, GIF (first frame), PSD, HDR, PIC
// and PNM; grey and grey+alpha pictures become RGB by repeating the grey
// value, and an alpha channel is dropped. Before decoding, the header's size
// is checked against a limit so a file that claims 100,000 x 100,000 pixels
// is refused without allocating for it.
//
// stb is compiled here with static linkage (STB_IMAGE_STATIC), so the
// library stays header-only and cannot clash with another copy of stb in the
// same program. Include this header before any other use of stb_image.h.
#pragma once

#include <cstdint>
#include <cstdio>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "image.hpp"

#if defined(STBI_INCLUDE_STB_IMAGE_H) && !defined(CONVNET_STB_IMAGE_INCLUDED)
#error "convnet/data/image_io.hpp compiles its own static copy of stb_image: include it before <stb/stb_image.h>"
#endif
#ifndef CONVNET_STB_IMAGE_INCLUDED
#define CONVNET_STB_IMAGE_INCLUDED
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop
#endif

namespace convnet {

/// Limits applied before decoding (hostile headers are refused, not allocated).
struct ImageLimits {
  Index max_pixels = 100'000'000;       ///< width * height
  Index max_file_bytes = 256LL << 20;  ///< a bigger file is refused before it is read
};

/// Decodes a picture held in memory (the bytes of a JPEG, PNG, ... file) into
/// RGB (3 x H x W, values 0-255). `source` names it in errors. The header's
/// size is checked against `limits` before any pixel memory is allocated.
inline Image decode_image_from_memory(const std::uint8_t* bytes, std::size_t size, const std::string& source,
                                      const ImageLimits& limits = {}) {
  if (size > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    throw DataError(detail::concat("image ", source, " is ", size, " bytes, more than stb_image reads"));
  }
  const int length = static_cast<int>(size);
  int w = 0, h = 0, channels = 0;
  if (size == 0 || !stbi_info_from_memory(bytes, length, &w, &h, &channels)) {
    throw DataError("cannot decode image " + source + ": " + (size == 0 ? "empty file" : stbi_failure_reason()));
  }
  if (w <= 0 || h <= 0 || static_cast<double>(w) * static_cast<double>(h) > static_cast<double>(limits.max_pixels)) {
    throw DataError(detail::concat("image ", source, " claims ", w, " x ", h, " pixels, over the limit of ",
                                   limits.max_pixels, " pixels (ImageLimits::max_pixels)"));
  }
  std::unique_ptr<stbi_uc, void (*)(void*)> data(stbi_load_from_memory(bytes, length, &w, &h, &channels, 3),
                                                 stbi_image_free);
  if (!data) throw DataError("cannot decode image " + source + ": " + stbi_failure_reason());
  Image image;
  image.resize(3, h, w);
  const stbi_uc* src = data.get();
  const Index plane = static_cast<Index>(w) * h;
  for (Index i = 0; i < plane; ++i) {
    for (Index c = 0; c < 3; ++c) image.pixels[static_cast<std::size_t>(c * plane + i)] = src[i * 3 + c];
  }
  return image;
}

/// Decodes the picture at `path` into RGB (3 x H x W, values 0-255).
/// Throws DataError naming the path and stb's reason.
inline Image decode_image(const std::string& path, const ImageLimits& limits = {}) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw DataError("cannot read image " + path + ": no such file or not readable");
  long file_size = -1;
  if (std::fseek(f, 0, SEEK_END) == 0) file_size = std::ftell(f);
  std::rewind(f);
  if (file_size > limits.max_file_bytes) {
    std::fclose(f);
    throw DataError(detail::concat("image ", path, " is ", file_size, " bytes, over the limit of ",
                                   limits.max_file_bytes, " bytes (ImageLimits::max_file_bytes)"));
  }
  std::vector<std::uint8_t> bytes;
  bytes.reserve(file_size > 0 ? static_cast<std::size_t>(file_size) : 0);
  std::uint8_t chunk[65536];
  for (std::size_t got; (got = std::fread(chunk, 1, sizeof chunk, f)) > 0;) {
    bytes.insert(bytes.end(), chunk, chunk + got);
    if (static_cast<Index>(bytes.size()) > limits.max_file_bytes) break;  // grew while being read
  }
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) throw DataError("cannot read image " + path + ": read error");
  return decode_image_from_memory(bytes.data(), bytes.size(), path, limits);
}

/// Writes 8-bit RGB pixels (H x W x 3, row-major) as a PNG; throws DataError on failure.
inline void write_png(const std::string& path, Index width, Index height, const std::vector<std::uint8_t>& rgb) {
  if (static_cast<Index>(rgb.size()) != width * height * 3) {
    throw DataError(detail::concat("write_png ", path, ": ", rgb.size(), " bytes for ", width, " x ", height,
                                   " RGB pixels (expected ", width * height * 3, ")"));
  }
  if (!stbi_write_png(path.c_str(), static_cast<int>(width), static_cast<int>(height), 3, rgb.data(),
                      static_cast<int>(width * 3))) {
    throw DataError("cannot write PNG " + path);
  }
}

}  // namespace convnet
