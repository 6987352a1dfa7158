// The protocol-buffer wire format, the little of it an ONNX file needs: a writer of fields and a
// reader that walks one message's fields, every length checked against the bytes that remain.
//
// Why not libprotobuf and onnx.proto: the library is headers only, and generated code would add a
// code generator to every consumer's build and a shared library to link; ONNX's subset is six
// message types of scalars, strings and nested messages, which the wire format makes short to
// write and to read (https://protobuf.dev/programming-guides/encoding/). Reading it ourselves also
// lets every size be bounded before anything is allocated (interop/onnx_import.hpp).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "../errors.hpp"

namespace convnet::protobuf {

enum WireType : int { Varint = 0, Fixed64 = 1, Bytes = 2, Fixed32 = 5 };

/// Appends fields to a message; a nested message is written into a Writer of its own first.
class Writer {
 public:
  Writer& varint(int field, std::uint64_t v) {
    key(field, Varint);
    raw_varint(v);
    return *this;
  }
  Writer& int64(int field, std::int64_t v) { return varint(field, static_cast<std::uint64_t>(v)); }
  Writer& bytes(int field, std::string_view v) {
    key(field, Bytes);
    raw_varint(v.size());
    out_.append(v.data(), v.size());
    return *this;
  }
  Writer& message(int field, const Writer& m) { return bytes(field, m.out_); }
  Writer& float32(int field, float v) {
    key(field, Fixed32);
    char b[4];
    std::memcpy(b, &v, 4);  // the wire is little-endian, as the hosts we build for
    out_.append(b, 4);
    return *this;
  }
  const std::string& str() const { return out_; }

 private:
  void key(int field, WireType type) { raw_varint((static_cast<std::uint64_t>(field) << 3) | static_cast<unsigned>(type)); }
  void raw_varint(std::uint64_t v) {
    while (v >= 0x80) {
      out_ += static_cast<char>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    out_ += static_cast<char>(v);
  }
  std::string out_;
};

/// One field as read: its number, its wire type and its value (`bytes` views the message's bytes).
struct Field {
  int number = 0;
  WireType type = Varint;
  std::uint64_t value = 0;  ///< Varint, Fixed32, Fixed64
  std::string_view bytes;   ///< Bytes

  std::int64_t int64() const { return static_cast<std::int64_t>(value); }
  float float32() const {
    const auto bits = static_cast<std::uint32_t>(value);
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }
};

/// The fields of one message, in order. Errors (DataError) name `where` and the offset.
class Reader {
 public:
  Reader(std::string_view message, std::string where) : data_(message), where_(std::move(where)) {}

  /// The next field, or false at the end of the message.
  bool next(Field& f) {
    if (pos_ == data_.size()) return false;
    const std::uint64_t key = varint();
    if (key >> 3 == 0 || key >> 3 > (1u << 29)) fail("a field number out of range");
    f.number = static_cast<int>(key >> 3);
    f.type = static_cast<WireType>(key & 7);
    f.bytes = {};
    switch (f.type) {
      case Varint: f.value = varint(); break;
      case Fixed64: f.value = fixed(8); break;
      case Fixed32: f.value = fixed(4); break;
      case Bytes: {
        const std::uint64_t n = varint();
        if (n > data_.size() - pos_) fail("a length of " + std::to_string(n) + " bytes past the end");
        f.bytes = data_.substr(pos_, static_cast<std::size_t>(n));
        pos_ += static_cast<std::size_t>(n);
        break;
      }
      default: fail("wire type " + std::to_string(static_cast<int>(key & 7)) + ", which ONNX does not use");
    }
    return true;
  }

  /// The varints packed in a Bytes field (a repeated integer written packed).
  static std::uint64_t packed_varint(std::string_view bytes, std::size_t& pos, const std::string& where) {
    Reader r(bytes, where);
    r.pos_ = pos;
    const std::uint64_t v = r.varint();
    pos = r.pos_;
    return v;
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw DataError(where_ + ": " + what + " at byte " + std::to_string(pos_) + " of a " + std::to_string(data_.size()) +
                    "-byte message");
  }

 private:
  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ == data_.size()) fail("a number cut off by the end");
      const auto b = static_cast<unsigned char>(data_[pos_++]);
      v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return v;
    }
    fail("a number longer than ten bytes");
  }
  std::uint64_t fixed(int n) {
    if (data_.size() - pos_ < static_cast<std::size_t>(n)) fail("a number cut off by the end");
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= static_cast<std::uint64_t>(static_cast<unsigned char>(data_[pos_ + i])) << (8 * i);
    pos_ += static_cast<std::size_t>(n);
    return v;
  }

  std::string_view data_;
  std::string where_;
  std::size_t pos_ = 0;
};

}  // namespace convnet::protobuf
