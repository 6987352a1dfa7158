// Reading and writing pictures through stb (Debian's libstb-dev).
//
// decode_image() reads JPEG, PNG, BMP, TGA, GIF (first frame) and PNM; grey
// and grey+alpha pictures become RGB by repeating the grey value, and an alpha
// channel is dropped. stb's other readers (PSD, HDR, PIC) are not compiled:
// nothing here needs them, and stb 2.27's HDR reader loops forever on a
// scanline cut short (CVE-2021-42715).
//
// Memory is bounded before anything is decoded. The header's size is checked
// against ImageLimits, then the decoder's worst case for that format and size
// (decode_cost) must fit in ImageLimits::max_decoded_bytes, and that many
// bytes are reserved from one budget every decoding thread of the process
// shares (set_image_decode_budget). stb allocates through an arena that holds
// it to the reservation, so a picture whose data decompresses to more than its
// header says (a zlib bomb, a GIF's frame on a large screen) fails cleanly.
//
// stb is compiled here with static linkage (STB_IMAGE_STATIC), so the
// library stays header-only and cannot clash with another copy of stb in the
// same program. Include this header before any other use of stb_image.h.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "../checkpoint/atomic_file.hpp"
#include "../errors.hpp"
#include "file_bytes.hpp"
#include "image.hpp"

#if defined(STBI_INCLUDE_STB_IMAGE_H) && !defined(CONVNET_STB_IMAGE_INCLUDED)
#error "convnet/data/image_io.hpp compiles its own static copy of stb_image: include it before <stb/stb_image.h>"
#endif
#ifndef CONVNET_STB_IMAGE_INCLUDED
#define CONVNET_STB_IMAGE_INCLUDED
#include "image_decode_budget.hpp"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_ONLY_TGA
#define STBI_ONLY_GIF
#define STBI_ONLY_PNM
#define STBI_MALLOC(size) ::convnet::detail::stb_arena_malloc(size)
#define STBI_REALLOC(p, size) ::convnet::detail::stb_arena_realloc(p, size)
#define STBI_FREE(p) ::convnet::detail::stb_arena_free(p)
#include <stb/stb_image.h>
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop
#endif

namespace convnet {

/// Limits applied before decoding (hostile headers are refused, not allocated).
struct ImageLimits {
  /// width * height (default 100 million)
  ImageLimits& max_pixels(Index v) { max_pixels_ = v; return *this; }
  /// A bigger file is refused before it is read (default 64 MiB).
  ImageLimits& max_file_bytes(Index v) { max_file_bytes_ = v; return *this; }
  /// The most one picture may take while decoded: the decoder's buffers and the decoded pixels,
  /// at their worst for the picture's format and size (decode_cost), not counting the file
  /// (default 1 GiB: a 5,000 x 5,000 8-bit PNG or a 6,000 x 6,000 JPEG fits).
  ImageLimits& max_decoded_bytes(Index v) { max_decoded_bytes_ = v; return *this; }
  /// The longer side over the shorter (default 100): a 1 x 1,000,000 strip is no picture to
  /// classify, and scaling its shorter side up would take gigabytes.
  ImageLimits& max_aspect_ratio(double v) { max_aspect_ratio_ = v; return *this; }
  Index max_pixels() const { return max_pixels_; }
  Index max_file_bytes() const { return max_file_bytes_; }
  Index max_decoded_bytes() const { return max_decoded_bytes_; }
  double max_aspect_ratio() const { return max_aspect_ratio_; }

 private:
  Index max_pixels_ = 100'000'000;
  Index max_file_bytes_ = 64LL << 20;
  Index max_decoded_bytes_ = 1LL << 30;
  double max_aspect_ratio_ = 100;
};

namespace detail {
/// stb_image reads a binary PNM header's numbers into an int without checking
/// for overflow (undefined behaviour, found by fuzzing): refuse any of the
/// first three numbers (width, height, maximum value) longer than 8 digits
/// before stb sees them. And a maximum value over 255 makes stb 2.27 read the
/// picture as 16-bit and then convert its channels with the 8-bit routine,
/// reading past its buffer (found by fuzzing): such files are refused too.
inline void check_pnm_header(const std::uint8_t* bytes, std::size_t size, const std::string& source) {
  if (size < 2 || bytes[0] != 'P' || (bytes[1] != '5' && bytes[1] != '6')) return;
  std::size_t pos = 2;
  for (int field = 0; field < 3; ++field) {
    while (pos < size) {  // whitespace and comments, as stb skips them
      if (bytes[pos] == '#') {
        while (pos < size && bytes[pos] != '\n' && bytes[pos] != '\r') ++pos;
      } else if (bytes[pos] == ' ' || (bytes[pos] >= '\t' && bytes[pos] <= '\r')) {
        ++pos;
      } else {
        break;
      }
    }
    std::size_t digits = 0;
    long value = 0;
    for (; pos < size && bytes[pos] >= '0' && bytes[pos] <= '9'; ++pos, ++digits) {
      if (digits < 9) value = value * 10 + (bytes[pos] - '0');
    }
    if (digits > 8) {
      throw DataError(concat("cannot decode image ", source, ": PNM header field ", field + 1, " has ", digits,
                             " digits (more than any real picture needs)"));
    }
    if (digits == 0) return;  // malformed: stb reports it
    if (field == 2 && value > 255) {
      throw DataError(concat("cannot decode image ", source, ": a 16-bit PNM (maximum value ", value,
                             ") is not supported; convert it to 8 bits"));
    }
  }
}

/// stb_image 2.27 (Debian 12's) builds a JPEG Huffman table without checking
/// that its 16 code counts sum to at most 256, and then writes past a
/// 257-entry array (found by fuzzing; fixed upstream in 2.28). Walk the JPEG's
/// markers the way stb reads them and refuse such a table before stb sees it.
inline void check_jpeg_huffman_tables(const std::uint8_t* b, std::size_t size, const std::string& source) {
  // stb skips 0xFF fill bytes before the first marker, so "FF FF FF D8" starts a JPEG too.
  std::size_t pos = 0;
  while (pos < size && b[pos] == 0xFF) ++pos;
  if (pos == 0 || pos >= size || b[pos] != 0xD8) return;
  ++pos;
  while (pos + 1 < size) {
    if (b[pos] != 0xFF) {  // entropy-coded data or junk: stb scans for the next marker too
      ++pos;
      continue;
    }
    const std::uint8_t marker = b[pos + 1];
    if (marker == 0xFF) {  // fill byte
      ++pos;
      continue;
    }
    if (marker == 0x00 || marker == 0x01 || marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7)) {
      pos += 2;  // stuffing, TEM, SOI, restart markers: no length
      continue;
    }
    if (marker == 0xD9 || pos + 4 > size) return;  // end of image
    const long length = (static_cast<long>(b[pos + 2]) << 8) | b[pos + 3];
    std::size_t p = pos + 4;
    if (marker != 0xC4) {
      pos = pos + 2 + static_cast<std::size_t>(std::max(length, 2L));
      continue;
    }
    // DHT: tables until the segment length is used up, read sequentially as stb does.
    for (long left = length - 2; left > 0 && p < size;) {
      long codes = 0;  // past the end stb reads zeros, so count what is there
      for (std::size_t i = p + 1; i <= p + 16 && i < size; ++i) codes += b[i];
      if (codes > 256) {
        throw DataError(concat("cannot decode image ", source, ": corrupt JPEG: a Huffman table at byte ", p,
                               " declares ", codes, " codes (at most 256)"));
      }
      p += 17 + static_cast<std::size_t>(codes);
      left -= 17 + codes;
    }
    pos = p;
  }
}

/// stb_image grows its buffer for a PNG data chunk to the length the chunk
/// claims before reading it, so a 100-byte file claiming a 2 GB chunk makes
/// it allocate 2 GB (found by fuzzing). Walk the chunks first: each must fit
/// in the bytes that remain.
inline void check_png_chunks(const std::uint8_t* b, std::size_t size, const std::string& source) {
  static const std::uint8_t signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (size < 8 || std::memcmp(b, signature, 8) != 0) return;
  std::size_t pos = 8;
  while (pos + 8 <= size) {
    const std::uint64_t length = (std::uint64_t{b[pos]} << 24) | (std::uint64_t{b[pos + 1]} << 16) |
                                 (std::uint64_t{b[pos + 2]} << 8) | b[pos + 3];
    const bool end = std::memcmp(b + pos + 4, "IEND", 4) == 0;
    if (length > size - pos - 8) {
      throw DataError(concat("cannot decode image ", source, ": corrupt PNG: the chunk at byte ", pos, " claims ",
                             length, " bytes but only ", size - pos - 8, " remain"));
    }
    if (end) return;
    pos += 8 + static_cast<std::size_t>(length) + 4;  // length, type, data, CRC
  }
}
}  // namespace detail

/// A picture's size as its header says, before any pixel is decoded.
struct ImageInfo {
  Index width = 0, height = 0;
};

/// Reads the header of a picture held in memory (after the same checks decoding makes, which stb's
/// header path needs as much as its decoder) and checks its size against `limits`. Throws DataError
/// naming `source`.
inline ImageInfo image_info_from_memory(const std::uint8_t* bytes, std::size_t size, const std::string& source,
                                        const ImageLimits& limits = {}) {
  if (size > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    throw DataError(detail::concat("image ", source, " is ", size, " bytes, more than stb_image reads"));
  }
  detail::check_pnm_header(bytes, size, source);
  detail::check_jpeg_huffman_tables(bytes, size, source);
  detail::check_png_chunks(bytes, size, source);
  int w = 0, h = 0, channels = 0;
  if (size == 0 || !stbi_info_from_memory(bytes, static_cast<int>(size), &w, &h, &channels)) {
    throw DataError("cannot decode image " + source + ": " + (size == 0 ? "empty file" : stbi_failure_reason()));
  }
  if (w <= 0 || h <= 0 || static_cast<double>(w) * static_cast<double>(h) > static_cast<double>(limits.max_pixels())) {
    throw DataError(detail::concat("image ", source, " claims ", w, " x ", h, " pixels, over the limit of ",
                                   limits.max_pixels(), " pixels (ImageLimits::max_pixels)"));
  }
  const double ratio = static_cast<double>(std::max(w, h)) / static_cast<double>(std::min(w, h));
  if (ratio > limits.max_aspect_ratio()) {
    throw DataError(detail::concat("image ", source, " is ", w, " x ", h, " pixels, an aspect ratio of ", ratio,
                                   ", over the limit of ", limits.max_aspect_ratio(), " (ImageLimits::max_aspect_ratio)"));
  }
  return {w, h};
}

/// The formats decode_image() reads, told apart by their first bytes as stb tells them.
enum class ImageFormat { Jpeg, Png, Bmp, Gif, Pnm, Tga };

inline const char* format_name(ImageFormat f) {
  switch (f) {
    case ImageFormat::Jpeg: return "JPEG";
    case ImageFormat::Png: return "PNG";
    case ImageFormat::Bmp: return "BMP";
    case ImageFormat::Gif: return "GIF";
    case ImageFormat::Pnm: return "PNM";
    case ImageFormat::Tga: return "TGA";
  }
  return "?";
}

inline ImageFormat image_format(const std::uint8_t* b, std::size_t size) {
  if (size >= 8 && b[0] == 0x89 && b[1] == 'P' && b[2] == 'N' && b[3] == 'G') return ImageFormat::Png;
  if (size >= 2 && b[0] == 0xFF) return ImageFormat::Jpeg;
  if (size >= 2 && b[0] == 'B' && b[1] == 'M') return ImageFormat::Bmp;
  if (size >= 4 && b[0] == 'G' && b[1] == 'I' && b[2] == 'F' && b[3] == '8') return ImageFormat::Gif;
  if (size >= 2 && b[0] == 'P' && (b[1] == '5' || b[1] == '6')) return ImageFormat::Pnm;
  return ImageFormat::Tga;  // stb tries TGA last: it has no signature
}

/// The most decoding a `width` x `height` picture of this kind (the bytes held in memory) may take,
/// in bytes: stb's buffers at their peak, for the format's worst case (CMYK progressive JPEG,
/// interlaced 16-bit RGBA PNG, a GIF's whole screen), plus the decoded RGB floats; sides are
/// rounded up by a JPEG block row and column. The file itself is not counted.
inline std::uint64_t decode_cost(const std::uint8_t* bytes, std::size_t size, const ImageInfo& info) {
  const std::uint64_t padded = static_cast<std::uint64_t>(info.width + 32) * static_cast<std::uint64_t>(info.height + 32);
  std::uint64_t per_pixel = 8;  // BMP, TGA, PNM: the picture as stored, then as RGB
  switch (image_format(bytes, size)) {
    case ImageFormat::Jpeg:  // four components, each as samples and as 16-bit coefficients; RGB out
      per_pixel = 16;
      break;
    case ImageFormat::Png: {  // inflated rows, the picture, an interlace pass, 16 to 8 bits, RGB out
      const bool sixteen_bit = size > 24 && bytes[24] == 16;
      per_pixel = sixteen_bit ? 32 : 16;
      break;
    }
    case ImageFormat::Gif:  // the screen as RGBA twice (frame and background), its history, RGB out
      per_pixel = 12;
      break;
    default:
      break;
  }
  const std::uint64_t rgb_floats = 3 * sizeof(float) * static_cast<std::uint64_t>(info.width) *
                                   static_cast<std::uint64_t>(info.height);
  const std::uint64_t png_chunks = 2 * static_cast<std::uint64_t>(size);  // the joined data chunks, grown by doubling
  return per_pixel * padded + rgb_floats + png_chunks + (1u << 20);
}

/// Decodes a picture held in memory (the bytes of a JPEG, PNG, ... file) into
/// RGB (3 x H x W, values 0-255). `source` names it in errors. The header's
/// size is checked against `limits`, and its decoding's worst case reserved
/// from the process's budget, before any pixel memory is allocated.
inline Image decode_image_from_memory(const std::uint8_t* bytes, std::size_t size, const std::string& source,
                                      const ImageLimits& limits = {}) {
  const ImageInfo info = image_info_from_memory(bytes, size, source, limits);
  const std::uint64_t cost = decode_cost(bytes, size, info);
  const char* format = format_name(image_format(bytes, size));
  if (cost > static_cast<std::uint64_t>(std::max<Index>(0, limits.max_decoded_bytes()))) {
    throw DataError(detail::concat("image ", source, " is a ", info.width, " x ", info.height, " ", format,
                                   ": decoding it may take ", cost, " bytes, over the limit of ",
                                   limits.max_decoded_bytes(), " bytes (ImageLimits::max_decoded_bytes)"));
  }
  const auto reservation = ImageDecodeBudget::process().reserve(cost, source);
  const std::uint64_t rgb_floats = 3 * sizeof(float) * static_cast<std::uint64_t>(info.width * info.height);
  int w = 0, h = 0, channels = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> data(nullptr, stbi_image_free);
  {
    detail::StbArenaScope arena(static_cast<std::size_t>(cost - rgb_floats));
    data.reset(stbi_load_from_memory(bytes, static_cast<int>(size), &w, &h, &channels, 3));
    if (!data && arena.arena().refused) {
      throw DataError(detail::concat("cannot decode image ", source, ": decoding this ", info.width, " x ", info.height,
                                     " ", format, " needed more than the ", cost - rgb_floats,
                                     " bytes its size allows (corrupt or hostile data)"));
    }
  }
  if (!data) throw DataError("cannot decode image " + source + ": " + stbi_failure_reason());
  if (w != info.width || h != info.height) {
    throw DataError(detail::concat("cannot decode image ", source, ": its header says ", info.width, " x ", info.height,
                                   " but it decoded to ", w, " x ", h));
  }
  Image image;
  image.resize(3, h, w);
  const stbi_uc* src = data.get();
  const Index plane = static_cast<Index>(w) * h;
  for (Index i = 0; i < plane; ++i) {
    for (Index c = 0; c < 3; ++c) image.pixels[static_cast<std::size_t>(c * plane + i)] = src[i * 3 + c];
  }
  return image;
}

/// The size the header of the picture at `path` gives, checked as decode_image() checks it.
inline ImageInfo image_info(const std::string& path, const ImageLimits& limits = {}) {
  const std::vector<std::uint8_t> bytes = read_file_bytes(path, limits.max_file_bytes(), "image");
  return image_info_from_memory(bytes.data(), bytes.size(), path, limits);
}

/// Decodes the picture at `path` into RGB (3 x H x W, values 0-255).
/// Throws DataError naming the path and stb's reason.
inline Image decode_image(const std::string& path, const ImageLimits& limits = {}) {
  const std::vector<std::uint8_t> bytes = read_file_bytes(path, limits.max_file_bytes(), "image");
  return decode_image_from_memory(bytes.data(), bytes.size(), path, limits);
}

/// Writes 8-bit RGB pixels (H x W x 3, row-major) as a PNG, atomically (checkpoint/atomic_file.hpp:
/// a reader sees the old picture or the new, a link at `path` is replaced, never followed); throws
/// DataError naming the file on failure.
inline void write_png(const std::string& path, Index width, Index height, const std::vector<std::uint8_t>& rgb) {
  if (static_cast<Index>(rgb.size()) != width * height * 3) {
    throw DataError(detail::concat("write_png ", path, ": ", rgb.size(), " bytes for ", width, " x ", height,
                                   " RGB pixels (expected ", width * height * 3, ")"));
  }
  std::string png;
  auto append = [](void* context, void* data, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<std::size_t>(size));
  };
  if (!stbi_write_png_to_func(append, &png, static_cast<int>(width), static_cast<int>(height), 3, rgb.data(),
                              static_cast<int>(width * 3))) {
    throw DataError("cannot encode PNG " + path);
  }
  if (const auto error = write_file_atomically(path, png)) {
    throw DataError("cannot write PNG " + error->file + ": " + error->reason);
  }
}

}  // namespace convnet
