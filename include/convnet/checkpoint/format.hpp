// Checkpoints: a versioned binary file of named entries, with a checksum,
// written atomically.
//
// File format, version 1 (all integers little-endian):
//   offset  size  field
//   0       8     magic "CNVNCKPT"
//   8       4     u32 format version (1)
//   12      4     u32 number of entries
//   16      8     u64 payload size in bytes
//   24      8     u64 FNV-1a 64-bit checksum of the payload
//   32      ...   payload: the entries, one after another:
//                   u32 key length, key bytes (UTF-8), u8 kind, then by kind:
//                   1 text:   u64 length, bytes
//                   2 u64s:   u64 count, count x u64
//                   3 f64s:   u64 count, count x f64
//                   4 f32 tensor / 5 f64 tensor: u32 rank, rank x u64 extents, values
// Every length is checked against the bytes that remain before anything is
// allocated, and errors name the file and the byte range that is wrong.
//
// What the entries mean is up to their writers: training_state.hpp maps a
// network, optimizer and schedule onto them, the Trainer adds its position.
// Saving goes through atomic_file.hpp, so an interrupted save leaves the
// previous checkpoint intact.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "../errors.hpp"
#include "../regular_file.hpp"
#include "../tensor.hpp"
#include "atomic_file.hpp"

namespace convnet {

/// A checkpoint that cannot be read, or does not fit the network it is loaded into.
class CheckpointError : public ErrorAs<std::runtime_error> {
 public:
  explicit CheckpointError(const std::string& what) : ErrorAs(what) {}
};

/// Limits on what a checkpoint may claim, checked before anything is allocated
/// for it (a file whose header claims a 10 GB tensor is refused, not read).
/// With them, loading a file takes at most twice its size plus 320 bytes an
/// entry plus 1 MiB (tests/test_allocations.cpp sums every allocation).
struct CheckpointLimits {
  /// The whole file (default 16 GiB: the paper network with Adam is ~0.75 GB).
  CheckpointLimits& file_bytes(std::uint64_t v) { max_file_bytes_ = v; return *this; }
  /// Any one tensor (default 2^31 values: fc6 of the paper network is 37.7 M).
  CheckpointLimits& tensor_elements(std::uint64_t v) { max_tensor_elements_ = v; return *this; }
  /// Entries (default 65,536: the paper network with Adam has 70; 4,096 layers with momentum fit).
  CheckpointLimits& entries(std::uint32_t v) { max_entries_ = v; return *this; }
  /// Any one key (default 1 KiB).
  CheckpointLimits& key_bytes(std::uint32_t v) { max_key_bytes_ = v; return *this; }
  /// Any one text entry (default 64 MiB: 100,000 class names of 256 bytes are 25 MB).
  CheckpointLimits& text_bytes(std::uint64_t v) { max_text_bytes_ = v; return *this; }
  std::uint64_t max_file_bytes() const { return max_file_bytes_; }
  std::uint64_t max_tensor_elements() const { return max_tensor_elements_; }
  std::uint32_t max_entries() const { return max_entries_; }
  std::uint32_t max_key_bytes() const { return max_key_bytes_; }
  std::uint64_t max_text_bytes() const { return max_text_bytes_; }

 private:
  std::uint64_t max_file_bytes_ = 16ULL << 30;
  std::uint64_t max_tensor_elements_ = 1ULL << 31;
  std::uint32_t max_entries_ = 65536;
  std::uint32_t max_key_bytes_ = 1024;
  std::uint64_t max_text_bytes_ = 64ULL << 20;
};

/// The largest counter (optimizer steps, weight-average updates) a checkpoint may hold: 2^53, the
/// integers a double holds exactly (they enter bias corrections and averages as doubles).
inline constexpr std::uint64_t kMaxStoredCounter = std::uint64_t{1} << 53;

class Checkpoint {
 public:
  static constexpr char kMagic[9] = "CNVNCKPT";
  static constexpr std::uint32_t kVersion = 1;
  static constexpr std::size_t kHeaderSize = 32;

  enum class Kind : std::uint8_t { Text = 1, U64s = 2, F64s = 3, F32Tensor = 4, F64Tensor = 5 };

  struct Entry {
    Kind kind = Kind::Text;
    std::string text;
    std::vector<std::uint64_t> u64s;
    std::vector<double> f64s;
    std::vector<Index> shape;
    std::vector<float> f32_values;
    std::vector<double> f64_values;

    Index element_count() const {
      Index n = 1;
      for (Index d : shape) n *= d;
      return n;
    }
  };

  // ---- writing entries ----
  void set_text(const std::string& key, const std::string& value) {
    Entry& e = entry_for(key, Kind::Text);
    e.text = value;
  }
  void set_u64s(const std::string& key, const std::vector<std::uint64_t>& values) {
    entry_for(key, Kind::U64s).u64s = values;
  }
  void set_f64s(const std::string& key, const std::vector<double>& values) {
    entry_for(key, Kind::F64s).f64s = values;
  }
  template <class T>
  void set_tensor(const std::string& key, const std::vector<Index>& shape, const T* data) {
    static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value, "float or double tensors");
    Entry& e = entry_for(key, std::is_same<T, float>::value ? Kind::F32Tensor : Kind::F64Tensor);
    e.shape = shape;
    const Index n = e.element_count();
    if constexpr (std::is_same<T, float>::value) {
      e.f32_values.assign(data, data + n);
    } else {
      e.f64_values.assign(data, data + n);
    }
  }

  /// Drops an entry; false when there was none.
  bool remove(const std::string& key) { return entries_.erase(key) != 0; }

  // ---- reading entries ----
  bool contains(const std::string& key) const { return entries_.count(key) != 0; }
  const std::map<std::string, Entry>& entries() const { return entries_; }
  const std::string& text(const std::string& key) const { return get(key, Kind::Text).text; }
  const std::vector<std::uint64_t>& u64s(const std::string& key) const { return get(key, Kind::U64s).u64s; }
  const std::vector<double>& f64s(const std::string& key) const { return get(key, Kind::F64s).f64s; }
  /// A counter stored as one u64 (an optimizer's steps): CheckpointError when the entry is missing,
  /// holds another count of values, or a value over kMaxStoredCounter.
  std::uint64_t counter(const std::string& key) const {
    if (!contains(key) || entry(key).kind != Kind::U64s || u64s(key).size() != 1) {
      throw CheckpointError(source() + ": " + key + " is missing or malformed");
    }
    const std::uint64_t v = u64s(key)[0];
    if (v > kMaxStoredCounter) {
      throw CheckpointError(detail::concat(source(), ": ", key, " is ", v, ", over 2^53 (no run counts that far)"));
    }
    return v;
  }
  /// A tensor entry; its values are converted to T if it was saved in the other precision.
  template <class T>
  std::vector<T> tensor(const std::string& key, std::vector<Index>* shape = nullptr) const {
    const Entry& e = entry(key);
    if (e.kind != Kind::F32Tensor && e.kind != Kind::F64Tensor) throw wrong_kind(key, "a tensor");
    if (shape) *shape = e.shape;
    if (e.kind == Kind::F32Tensor) return std::vector<T>(e.f32_values.begin(), e.f32_values.end());
    return std::vector<T>(e.f64_values.begin(), e.f64_values.end());
  }
  const Entry& entry(const std::string& key) const {
    auto it = entries_.find(key);
    if (it == entries_.end()) throw CheckpointError(source() + ": no entry '" + key + "'");
    return it->second;
  }

  /// Where it was loaded from ("checkpoint" when built in memory).
  std::string source() const { return path_.empty() ? "checkpoint" : "checkpoint " + path_; }

  // ---- files ----
  std::string serialize() const {
    std::string payload;
    for (const auto& [key, e] : entries_) {
      put_u32(payload, static_cast<std::uint32_t>(key.size()));
      payload += key;
      payload.push_back(static_cast<char>(e.kind));
      switch (e.kind) {
        case Kind::Text:
          put_u64(payload, e.text.size());
          payload += e.text;
          break;
        case Kind::U64s:
          put_u64(payload, e.u64s.size());
          put_bytes(payload, e.u64s.data(), e.u64s.size() * 8);
          break;
        case Kind::F64s:
          put_u64(payload, e.f64s.size());
          put_bytes(payload, e.f64s.data(), e.f64s.size() * 8);
          break;
        case Kind::F32Tensor:
        case Kind::F64Tensor:
          put_u32(payload, static_cast<std::uint32_t>(e.shape.size()));
          for (Index d : e.shape) put_u64(payload, static_cast<std::uint64_t>(d));
          if (e.kind == Kind::F32Tensor) {
            put_bytes(payload, e.f32_values.data(), e.f32_values.size() * 4);
          } else {
            put_bytes(payload, e.f64_values.data(), e.f64_values.size() * 8);
          }
          break;
      }
    }
    std::string file(kMagic, 8);
    put_u32(file, kVersion);
    put_u32(file, static_cast<std::uint32_t>(entries_.size()));
    put_u64(file, payload.size());
    put_u64(file, fnv1a(payload));
    return file + payload;
  }

  /// Writes atomically (atomic_file.hpp): a reader of `path` sees the previous checkpoint or this one,
  /// whenever the process is interrupted.
  /// Returns the file's checksum (its header's bytes 24-31), by which a run recognises its own files.
  std::uint64_t save(const std::string& path) const {
    const std::string bytes = serialize();
    if (const auto error = write_file_atomically(path, bytes)) {
      throw CheckpointError("cannot write checkpoint " + error->file + ": " + error->reason);
    }
    return get_u64(bytes, 24);
  }

  /// The checksum in the header of the checkpoint at `path` (its first 32 bytes only, so a 1 GB
  /// file costs nothing), or nothing when it is missing, not a regular file or not a checkpoint.
  static std::optional<std::uint64_t> stored_checksum(const std::string& path) {
    std::string header;
    if (read_regular_file_prefix(path, kHeaderSize, header) || header.size() != kHeaderSize ||
        std::memcmp(header.data(), kMagic, 8) != 0) {
      return std::nullopt;
    }
    return get_u64(header, 24);
  }

  static Checkpoint load(const std::string& path, const CheckpointLimits& limits = {}) {
    std::string bytes;  // a regular file only, read without blocking, bounded before it is allocated
    if (const auto refusal = read_regular_file(path, limits.max_file_bytes(), bytes)) {
      if (refusal->kind == FileRefusal::Kind::CannotOpen) throw CheckpointError("cannot open checkpoint " + path + ": " + refusal->detail);
      if (refusal->kind == FileRefusal::Kind::TooBig) {
        throw CheckpointError(detail::concat("checkpoint ", path, " is ", refusal->size, " bytes, over the limit of ",
                                             limits.max_file_bytes(), " (CheckpointLimits::max_file_bytes)"));
      }
      throw CheckpointError("checkpoint " + path + " " + refusal_text(*refusal, limits.max_file_bytes(), "CheckpointLimits::max_file_bytes"));
    }
    return parse(bytes, path, limits);
  }

  /// Parses the bytes of a checkpoint file; `path` names it in errors.
  static Checkpoint parse(const std::string& bytes, const std::string& path = "", const CheckpointLimits& limits = {}) {
    Checkpoint c;
    c.path_ = path;
    const std::string where = c.source();
    const std::uint32_t count = check_header(bytes, where, limits);
    Reader r{bytes, kHeaderSize, where};  // the entries are read in place: no copy of the file
    for (std::uint32_t i = 0; i < count; ++i) {
      const std::size_t start = r.pos;
      const std::uint32_t key_size = r.u32();
      if (key_size > limits.max_key_bytes()) {
        r.fail(detail::concat("entry ", i, " has a key of ", key_size, " bytes, over the limit of ",
                              limits.max_key_bytes(), " (CheckpointLimits::key_bytes)"));
      }
      const std::string key = r.bytes(key_size, "key");
      Entry e;
      e.kind = static_cast<Kind>(r.u8());
      read_entry(r, key, start, limits, e);
      if (!c.entries_.emplace(key, std::move(e)).second) r.fail("duplicate entry '" + key + "'");
    }
    if (r.pos != bytes.size()) {
      r.fail(detail::concat("bytes ", r.pos, "-", bytes.size() - 1, " follow the last entry"));
    }
    return c;
  }

 private:
  /// The header's magic, version, sizes and checksum; returns the number of entries.
  static std::uint32_t check_header(const std::string& bytes, const std::string& where, const CheckpointLimits& limits) {
    if (bytes.size() > limits.max_file_bytes()) {
      throw CheckpointError(detail::concat(where, ": ", bytes.size(), " bytes, over the limit of ",
                                           limits.max_file_bytes(), " (CheckpointLimits::max_file_bytes)"));
    }
    if (bytes.size() < kHeaderSize) {
      throw CheckpointError(detail::concat(where, ": truncated header: ", bytes.size(), " bytes, a header has ",
                                           kHeaderSize));
    }
    if (std::memcmp(bytes.data(), kMagic, 8) != 0) {
      throw CheckpointError(where + ": bytes 0-7 are not the magic number CNVNCKPT (not a convnet checkpoint)");
    }
    const std::uint32_t version = get_u32(bytes, 8);
    if (version != kVersion) {
      throw CheckpointError(detail::concat(where, ": bytes 8-11: format version ", version,
                                           " is not supported (this library reads version ", kVersion, ")"));
    }
    const std::uint64_t payload_size = get_u64(bytes, 16);
    if (payload_size != bytes.size() - kHeaderSize) {
      throw CheckpointError(detail::concat(where, ": the header (bytes 16-23) announces ", payload_size,
                                           " payload bytes but the file holds ", bytes.size() - kHeaderSize,
                                           bytes.size() - kHeaderSize < payload_size ? " (truncated)" : ""));
    }
    if (fnv1a(bytes.data() + kHeaderSize, bytes.size() - kHeaderSize) != get_u64(bytes, 24)) {
      throw CheckpointError(detail::concat(where, ": checksum mismatch over bytes ", kHeaderSize, "-",
                                           bytes.size() - 1, " (the file is corrupted)"));
    }
    const std::uint32_t count = get_u32(bytes, 12);
    if (count > limits.max_entries()) {
      throw CheckpointError(detail::concat(where, ": the header (bytes 12-15) announces ", count,
                                           " entries, over the limit of ", limits.max_entries(),
                                           " (CheckpointLimits::entries)"));
    }
    return count;
  }

  struct Reader;

  /// One entry's value, by its kind; every length checked against what remains first.
  static void read_entry(Reader& r, const std::string& key, std::size_t start, const CheckpointLimits& limits,
                         Entry& e) {
    switch (e.kind) {
      case Kind::Text: {
        const std::size_t n = r.length(1, key);
        if (n > limits.max_text_bytes()) {
          r.fail(detail::concat("entry '", key, "' is a text of ", n, " bytes, over the limit of ",
                                limits.max_text_bytes(), " (CheckpointLimits::text_bytes)"));
        }
        e.text = r.bytes(n, key);
        break;
      }
      case Kind::U64s:
        e.u64s.resize(r.length(8, key));
        r.copy(e.u64s.data(), e.u64s.size() * 8, key);
        break;
      case Kind::F64s:
        e.f64s.resize(r.length(8, key));
        r.copy(e.f64s.data(), e.f64s.size() * 8, key);
        break;
      case Kind::F32Tensor:
      case Kind::F64Tensor:
        read_tensor(r, key, limits, e);
        break;
      default:
        r.fail(detail::concat("entry '", key, "' (starting at byte ", start, ") has unknown kind ",
                              static_cast<int>(e.kind)));
    }
  }

  static void read_tensor(Reader& r, const std::string& key, const CheckpointLimits& limits, Entry& e) {
    const std::size_t payload = r.data.size() - kHeaderSize;
    const std::uint32_t rank = r.u32();
    if (rank > 8) r.fail(detail::concat("entry '", key, "' claims rank ", rank));
    std::uint64_t elements = 1;
    const std::size_t elem = e.kind == Kind::F32Tensor ? 4 : 8;
    for (std::uint32_t d = 0; d < rank; ++d) {
      const std::uint64_t extent = r.u64();
      if (extent != 0 && elements > (payload / elem) / extent) {
        r.fail(detail::concat("entry '", key, "' claims a tensor larger than the file"));
      }
      elements *= extent;
      e.shape.push_back(static_cast<Index>(extent));
    }
    if (elements > limits.max_tensor_elements()) {
      r.fail(detail::concat("entry '", key, "' claims a tensor of ", elements, " values, over the limit of ",
                            limits.max_tensor_elements(), " (CheckpointLimits::max_tensor_elements)"));
    }
    if (elements * elem > r.data.size() - r.pos) {
      r.fail(detail::concat("entry '", key, "' claims ", elements, " values but only ", r.data.size() - r.pos,
                            " bytes remain"));
    }
    if (e.kind == Kind::F32Tensor) {
      e.f32_values.resize(elements);
      r.copy(e.f32_values.data(), elements * 4, key);
    } else {
      e.f64_values.resize(elements);
      r.copy(e.f64_values.data(), elements * 8, key);
    }
  }

  struct Reader {
    const std::string& data;
    std::size_t pos;
    std::string where;

    [[noreturn]] void fail(const std::string& what) const {
      throw CheckpointError(detail::concat(where, ": at byte ", pos, ": ", what));
    }
    void need(std::size_t n, const std::string& what) const {
      if (n > data.size() - pos) {
        fail(detail::concat(what, " needs ", n, " bytes but only ", data.size() - pos, " remain"));
      }
    }
    std::uint8_t u8() {
      need(1, "a kind byte");
      return static_cast<std::uint8_t>(data[pos++]);
    }
    std::uint32_t u32() {
      need(4, "a 32-bit length");
      const std::uint32_t v = get_u32(data, pos);
      pos += 4;
      return v;
    }
    std::uint64_t u64() {
      need(8, "a 64-bit length");
      const std::uint64_t v = get_u64(data, pos);
      pos += 8;
      return v;
    }
    /// A count of `element`-byte items that must fit in what remains.
    std::size_t length(std::size_t element, const std::string& key) {
      const std::uint64_t n = u64();
      if (n > (data.size() - pos) / element) {
        fail(detail::concat("entry '", key, "' claims ", n, " items of ", element, " bytes but only ",
                            data.size() - pos, " bytes remain"));
      }
      return static_cast<std::size_t>(n);
    }
    std::string bytes(std::size_t n, const std::string& what) {
      need(n, what);
      std::string s = data.substr(pos, n);
      pos += n;
      return s;
    }
    void copy(void* dst, std::size_t n, const std::string& what) {
      need(n, "entry '" + what + "'");
      if (n) std::memcpy(dst, data.data() + pos, n);
      pos += n;
    }
  };

  Entry& entry_for(const std::string& key, Kind kind) {
    Entry& e = entries_[key];
    e = Entry();
    e.kind = kind;
    return e;
  }
  const Entry& get(const std::string& key, Kind kind) const {
    const Entry& e = entry(key);
    if (e.kind != kind) throw wrong_kind(key, kind == Kind::Text ? "text" : kind == Kind::U64s ? "integers" : "reals");
    return e;
  }
  CheckpointError wrong_kind(const std::string& key, const char* expected) const {
    return CheckpointError(source() + ": entry '" + key + "' is not " + expected);
  }

  static void put_bytes(std::string& out, const void* p, std::size_t n) {
    out.append(static_cast<const char*>(p), n);
  }
  // The format is little-endian; so are the machines this library targets (x86-64, AArch64).
  static void put_u32(std::string& out, std::uint32_t v) { put_bytes(out, &v, 4); }
  static void put_u64(std::string& out, std::uint64_t v) { put_bytes(out, &v, 8); }
  static std::uint32_t get_u32(const std::string& s, std::size_t at) {
    std::uint32_t v;
    std::memcpy(&v, s.data() + at, 4);
    return v;
  }
  static std::uint64_t get_u64(const std::string& s, std::size_t at) {
    std::uint64_t v;
    std::memcpy(&v, s.data() + at, 8);
    return v;
  }
  static std::uint64_t fnv1a(const char* p, std::size_t n) {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (std::size_t i = 0; i < n; ++i) {
      h ^= static_cast<unsigned char>(p[i]);
      h *= 0x100000001b3ULL;
    }
    return h;
  }
  static std::uint64_t fnv1a(const std::string& s) { return fnv1a(s.data(), s.size()); }

  std::map<std::string, Entry> entries_;
  std::string path_;
};

}  // namespace convnet
