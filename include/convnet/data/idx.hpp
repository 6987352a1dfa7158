// MNIST and Fashion-MNIST in the IDX files they are published as, plain or
// gzip-compressed:
//   train-images-idx3-ubyte[.gz]   60,000 grey pictures of 28 x 28
//   train-labels-idx1-ubyte[.gz]   their labels (0-9)
//   t10k-images-idx3-ubyte[.gz]    10,000 test pictures
//   t10k-labels-idx1-ubyte[.gz]
// An IDX file is a 4-byte magic (0, 0, the element type - 0x08 for unsigned
// bytes, the only one these datasets use - and the number of dimensions),
// one big-endian 32-bit size a dimension, then the elements row-major.
//
// Sizes from a header are bounded before anything is allocated: the payload
// they imply must fit IdxLimits::max_bytes and the file itself (for a gzip
// file, what deflate's largest ratio, 1032:1, lets its compressed bytes
// hold). gzip goes through zlib (Debian's zlib1g-dev; CMake links it when it
// is found and defines CONVNET_WITH_ZLIB); without it a .gz file is a clear
// error, never garbage. The pictures are grey: load() gives 1 x H x W.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#if defined(CONVNET_WITH_ZLIB)
#include <zlib.h>
#endif

#include "../errors.hpp"
#include "dataset.hpp"
#include "file_bytes.hpp"
#include "image.hpp"

namespace convnet {

struct IdxLimits {
  /// The largest payload (pictures x height x width bytes) a file may claim (default 1 GiB).
  IdxLimits& max_bytes(Index v) { max_bytes_ = v; return *this; }
  /// The largest picture side (default 4096).
  IdxLimits& max_side(Index v) { max_side_ = v; return *this; }
  Index max_bytes() const { return max_bytes_; }
  Index max_side() const { return max_side_; }

 private:
  Index max_bytes_ = Index{1} << 30;
  Index max_side_ = 4096;
};

/// Whether gzip-compressed IDX files can be read (convnet built with zlib).
inline constexpr bool idx_reads_gzip() {
#if defined(CONVNET_WITH_ZLIB)
  return true;
#else
  return false;
#endif
}

namespace detail {

inline bool is_gzip(const std::vector<std::uint8_t>& bytes) {
  return bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;
}

inline std::uint32_t big_endian32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

/// The bytes of a gzip stream holding an IDX file, inflated no further than `cap` bytes and than one
/// byte past the size its header claims once the header is out (so neither a stream of zeros that
/// inflates a thousandfold nor a header's claim commits memory the other does not allow).
inline std::vector<std::uint8_t> gunzip_idx(const std::vector<std::uint8_t>& in, Index cap, const std::string& source) {
#if defined(CONVNET_WITH_ZLIB)
  z_stream z{};
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) throw DataError("cannot start zlib for " + source);
  struct End {
    z_stream* z;
    ~End() { inflateEnd(z); }
  } end{&z};
  z.next_in = const_cast<Bytef*>(in.data());
  z.avail_in = static_cast<uInt>(in.size());
  std::vector<std::uint8_t> out;
  std::uint8_t chunk[65536];
  for (;;) {
    z.next_out = chunk;
    z.avail_out = sizeof chunk;
    const int rc = inflate(&z, Z_NO_FLUSH);
    const std::size_t got = sizeof chunk - z.avail_out;
    out.insert(out.end(), chunk, chunk + got);
    const std::size_t header = out.size() >= 4 ? 4 + 4 * std::size_t{out[3]} : 0;
    if (header > 0 && out.size() >= header) {  // the header is out: its claim (and one byte more) caps the rest
      double claim = static_cast<double>(header) + 1;
      double payload = 1;
      for (std::size_t d = 0; d < out[3]; ++d) payload *= big_endian32(out.data() + 4 + 4 * d);
      cap = static_cast<Index>(std::min(claim + payload, static_cast<double>(cap)));
    }
    if (static_cast<Index>(out.size()) > cap) {
      throw DataError(concat(source, " inflates to more than ", cap, " bytes, more than its header allows"));
    }
    if (rc == Z_STREAM_END) break;
    if (rc != Z_OK) {
      throw DataError(concat(source, " is not a valid gzip stream (zlib: ",
                             rc == Z_BUF_ERROR ? "truncated" : (z.msg ? z.msg : "error"), ")"));
    }
  }
  if (z.avail_in != 0) throw DataError(concat(source, " has ", z.avail_in, " bytes after its gzip stream"));
  return out;
#else
  (void)in;
  (void)cap;
  throw DataError(source + " is gzip-compressed, but convnet was built without zlib: install zlib1g-dev and "
                           "reconfigure, or gunzip the file");
#endif
}


/// The sizes of an IDX file's dimensions and its payload, checked against the header's claims and `limits`.
struct IdxArray {
  std::vector<Index> dims;
  std::vector<std::uint8_t> bytes;  ///< header included; the payload starts at offset()
  std::size_t offset() const { return 4 + 4 * dims.size(); }
  const std::uint8_t* data() const { return bytes.data() + offset(); }
};

/// Parses (inflating first if needed) an IDX file of unsigned bytes with `ndims` dimensions.
inline IdxArray parse_idx(std::vector<std::uint8_t> file, std::size_t ndims, const IdxLimits& limits,
                          const std::string& source) {
  IdxArray a;
  if (is_gzip(file)) {
    // Deflate at most shrinks 1032:1, so the file bounds what it can inflate to, and the limit bounds it too.
    const double most = static_cast<double>(file.size()) * 1032.0 + 1024.0;
    const Index cap = static_cast<Index>(std::min(most, static_cast<double>(limits.max_bytes()) + 4.0 + 4.0 * 3));
    file = gunzip_idx(file, cap, source);
  }
  if (file.size() < 4) throw DataError(concat(source, " has ", file.size(), " bytes, too few for an IDX header"));
  if (file[0] != 0 || file[1] != 0) throw DataError(source + " is not an IDX file (its first two bytes are not 0)");
  if (file[2] != 0x08) {
    throw DataError(concat(source, ": IDX element type 0x", std::hex, static_cast<int>(file[2]), std::dec,
                           " is not 0x08 (unsigned bytes), the only type MNIST uses"));
  }
  if (file[3] != ndims) {
    throw DataError(concat(source, " has ", static_cast<int>(file[3]), " dimensions, expected ", ndims,
                           ndims == 3 ? " (pictures, rows, columns)" : " (labels)"));
  }
  if (file.size() < 4 + 4 * ndims) throw DataError(concat(source, " is truncated inside its IDX header"));
  double payload = 1;
  for (std::size_t d = 0; d < ndims; ++d) {
    const Index n = big_endian32(file.data() + 4 + 4 * d);
    if (d > 0 && (n < 1 || n > limits.max_side())) {
      throw DataError(concat(source, ": dimension ", d, " is ", n, ", outside [1, ", limits.max_side(),
                             "] (IdxLimits::max_side)"));
    }
    a.dims.push_back(n);
    payload *= static_cast<double>(n);
  }
  if (payload > static_cast<double>(limits.max_bytes())) {
    throw DataError(concat(source, " claims ", payload, " bytes of data, over the limit of ", limits.max_bytes(),
                           " (IdxLimits::max_bytes)"));
  }
  const std::size_t expected = 4 + 4 * ndims + static_cast<std::size_t>(payload);
  if (file.size() != expected) {
    throw DataError(concat(source, ": its header says ", a.dims[0], ndims == 3 ? " pictures of " : " labels",
                           ndims == 3 ? concat(a.dims[1], " x ", a.dims[2]) : "", " (", expected, " bytes with the header) but the file has ",
                           file.size(), file.size() < expected ? " (truncated)" : " (trailing bytes)"));
  }
  a.bytes = std::move(file);
  return a;
}

}  // namespace detail

enum class IdxPart { Train, Test };

/// Grey pictures and labels from a pair of IDX files (MNIST, Fashion-MNIST, or any other in that layout).
class IdxDataset : public Dataset {
 public:
  /// The class names of the two published IDX datasets.
  static std::vector<std::string> mnist_classes() { return {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}; }
  static std::vector<std::string> fashion_mnist_classes() {
    return {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
  }

  /// The training (train-*) or test (t10k-*) part from `dir`; each file plain or with .gz.
  IdxDataset(const std::string& dir, IdxPart part, std::vector<std::string> class_names,
             const IdxLimits& limits = {}) {
    const std::string prefix = part == IdxPart::Train ? "train" : "t10k";
    const std::string images = find(dir, prefix + "-images-idx3-ubyte"), labels = find(dir, prefix + "-labels-idx1-ubyte");
    *this = from_memory(read(images, limits), read(labels, limits), std::move(class_names), images, labels, limits);
  }

  /// From the bytes of the two files (plain or gzip); `images_source` and `labels_source` name them in errors.
  static IdxDataset from_memory(std::vector<std::uint8_t> images, std::vector<std::uint8_t> labels,
                                std::vector<std::string> class_names, const std::string& images_source = "(images)",
                                const std::string& labels_source = "(labels)", const IdxLimits& limits = {}) {
    if (class_names.empty()) throw ArgumentError("IdxDataset: class_names is empty");
    IdxDataset d;
    d.names_ = std::move(class_names);
    d.images_ = detail::parse_idx(std::move(images), 3, limits, images_source);
    d.labels_ = detail::parse_idx(std::move(labels), 1, limits, labels_source);
    if (d.images_.dims[0] != d.labels_.dims[0]) {
      throw DataError(detail::concat(images_source, " holds ", d.images_.dims[0], " pictures but ", labels_source,
                                     " holds ", d.labels_.dims[0], " labels"));
    }
    if (d.images_.dims[0] == 0) throw DataError(images_source + " holds no pictures");
    for (Index i = 0; i < d.labels_.dims[0]; ++i) {
      const int label = d.labels_.data()[i];
      if (label >= static_cast<int>(d.names_.size())) {
        throw DataError(detail::concat(labels_source, ", label ", i, " (byte ", d.labels_.offset() + static_cast<std::size_t>(i),
                                       "): ", label, " is outside 0-", d.names_.size() - 1));
      }
    }
    return d;
  }

  Index size() const override { return images_.dims.empty() ? 0 : images_.dims[0]; }
  int label(Index i) const override {
    check_index(i);
    return labels_.data()[i];
  }
  void load(Index i, Image& out) const override {
    check_index(i);
    const Index h = images_.dims[1], w = images_.dims[2];
    out.resize(1, h, w);
    const std::uint8_t* src = images_.data() + i * h * w;
    for (Index k = 0; k < h * w; ++k) out.pixels[static_cast<std::size_t>(k)] = src[k];
  }
  const std::vector<std::string>& class_names() const override { return names_; }
  Index height() const { return images_.dims[1]; }
  Index width() const { return images_.dims[2]; }

 private:
  IdxDataset() = default;

  /// `dir/name`, else `dir/name.gz`; a DataError naming both when neither exists.
  static std::string find(const std::string& dir, const std::string& name) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path plain = fs::path(dir) / name, gz = fs::path(dir) / (name + ".gz");
    if (fs::exists(plain, ec)) return plain.string();
    if (fs::exists(gz, ec)) return gz.string();
    throw DataError("IDX file " + plain.string() + " (or " + gz.filename().string() + ") not found");
  }
  static std::vector<std::uint8_t> read(const std::string& path, const IdxLimits& limits) {
    // A compressed file is at most its payload; a plain one its payload and header.
    return read_file_bytes(path, limits.max_bytes() + 64, "IDX file", "IdxLimits::max_bytes");
  }

  std::vector<std::string> names_;
  detail::IdxArray images_, labels_;
};

}  // namespace convnet
