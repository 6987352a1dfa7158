// Exceptions thrown by convnet, and the helpers that format their messages.
//
// Every error of convnet's own is a convnet::Error, so one catch takes them all,
// and each is also the standard exception it naturally is:
//   ArgumentError       (std::invalid_argument) an invalid option, flag or argument; names
//                       the option and the value
//   ShapeError          (std::invalid_argument) a tensor of the wrong shape handed to
//                       a layer or loss; names the layer, the expected and the actual shape
//   DataError           (std::runtime_error) a missing, truncated or corrupt file, an
//                       undecodable picture, a folder that cannot be read or written
//   CheckpointError     (std::runtime_error, checkpoint/format.hpp) a checkpoint that cannot be
//                       read or does not fit; names the file and the byte range or layer
//   NonFiniteLossError  (std::runtime_error, train/step.hpp) NaN or infinity in a step
//   LookupError         (std::out_of_range) a layer name or record index that is not there
//   SystemError         (std::runtime_error) a process, pipe or MPI call that failed
//   StateError          (std::logic_error) a call out of order (backward before forward, a
//                       loader read before its epoch started)
// All are thrown at the public boundary, before any work. tests/test_core.cpp keeps the
// library to this: no throw in include/convnet names a bare standard exception.
#pragma once

#include <charconv>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace convnet {

/// The base of every error convnet throws of its own: catch (const convnet::Error& e) { e.what(); }.
class Error {
 public:
  virtual ~Error() = default;
  virtual const char* what() const noexcept = 0;
};

/// An Error that is also the standard exception `Std` (so `catch (const std::runtime_error&)` still works).
template <class Std>
class ErrorAs : public Std, public Error {
 public:
  explicit ErrorAs(const std::string& what) : Std(what) {}
  const char* what() const noexcept override { return Std::what(); }
};

/// A tensor handed to a layer (or loss) does not have the shape it needs.
class ShapeError : public ErrorAs<std::invalid_argument> {
 public:
  ShapeError(const std::string& where, const std::string& expected, const std::string& actual)
      : ErrorAs(where + ": expected shape " + expected + ", got " + actual),
        where_(where), expected_(expected), actual_(actual) {}

  const std::string& where() const noexcept { return where_; }
  const std::string& expected() const noexcept { return expected_; }
  const std::string& actual() const noexcept { return actual_; }

 private:
  std::string where_, expected_, actual_;
};

/// An option, flag or argument out of its range or of the wrong kind.
class ArgumentError : public ErrorAs<std::invalid_argument> {
 public:
  explicit ArgumentError(const std::string& what) : ErrorAs(what) {}
};

/// Reading or writing data failed: a missing, truncated or corrupt file, an undecodable picture.
class DataError : public ErrorAs<std::runtime_error> {
 public:
  explicit DataError(const std::string& what) : ErrorAs(what) {}
};

/// A name or an index that is not there: a layer the network does not have, a record past the end.
class LookupError : public ErrorAs<std::out_of_range> {
 public:
  explicit LookupError(const std::string& what) : ErrorAs(what) {}
};

/// The system around the library failed: a process, a pipe, the MPI library.
class SystemError : public ErrorAs<std::runtime_error> {
 public:
  explicit SystemError(const std::string& what) : ErrorAs(what) {}
};

/// A call made out of order: the object is not in the state the call needs.
class StateError : public ErrorAs<std::logic_error> {
 public:
  explicit StateError(const std::string& what) : ErrorAs(what) {}
};

namespace detail {

/// A whole number or a decimal from text, locale-free (std::from_chars), all of the text or an error.
template <class N>
N parse_number(const std::string& text) {
  N value{};
  const auto result = std::from_chars(text.data(), text.data() + text.size(), value);
  if (result.ec != std::errc() || result.ptr != text.data() + text.size()) {
    throw ArgumentError("not a number: '" + text + "'");
  }
  return value;
}


/// Builds "Conv2d: stride must be >= 1, got 0" style messages.
template <class... Args>
std::string concat(Args&&... args) {
  std::ostringstream out;
  (out << ... << std::forward<Args>(args));
  return out.str();
}

/// Throws ArgumentError("<where>: <option> must be <requirement>, got <value>") unless ok.
template <class V>
void require_option(bool ok, const std::string& where, const char* option, const char* requirement,
                    const V& value) {
  if (!ok) {
    throw ArgumentError(concat(where, ": ", option, " must be ", requirement, ", got ", value));
  }
}

}  // namespace detail
}  // namespace convnet
