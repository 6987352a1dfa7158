// Exceptions thrown by convnet, and the helpers that format their messages.
//
// Every error of convnet's own is a convnet::Error, so one catch takes them all,
// and each is also the standard exception it naturally is:
//   ShapeError          (std::invalid_argument) a tensor of the wrong shape handed to
//                       a layer or loss; names the layer, the expected and the actual shape
//   DataError           (std::runtime_error, data/image.hpp) a missing, truncated or corrupt file
//   CheckpointError     (std::runtime_error, checkpoint.hpp) a checkpoint that cannot be read
//                       or does not fit; names the file and the byte range or layer
//   NonFiniteLossError  (std::runtime_error, training.hpp) NaN or infinity in a step
// An invalid option or argument throws std::invalid_argument naming the option
// and the value. All are thrown at the public boundary, before any work.
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

namespace detail {

/// A whole number or a decimal from text, locale-free (std::from_chars), all of the text or an error.
template <class N>
N parse_number(const std::string& text) {
  N value{};
  const auto result = std::from_chars(text.data(), text.data() + text.size(), value);
  if (result.ec != std::errc() || result.ptr != text.data() + text.size()) {
    throw std::invalid_argument("not a number: '" + text + "'");
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

/// Throws std::invalid_argument("<where>: <option> must be <requirement>, got <value>") unless ok.
template <class V>
void require_option(bool ok, const std::string& where, const char* option, const char* requirement,
                    const V& value) {
  if (!ok) {
    throw std::invalid_argument(concat(where, ": ", option, " must be ", requirement, ", got ", value));
  }
}

}  // namespace detail
}  // namespace convnet
