// Exceptions thrown by convnet, and the helpers that format their messages.
//
// Two kinds of mistakes reach the user: a tensor of the wrong shape handed to a
// layer (ShapeError, which names the layer, the expected and the actual shape),
// and an invalid option or argument (std::invalid_argument, naming the option
// and the value). Both are thrown at the public boundary, before any work.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace convnet {

/// A tensor handed to a layer (or loss) does not have the shape it needs.
class ShapeError : public std::invalid_argument {
 public:
  ShapeError(const std::string& where, const std::string& expected, const std::string& actual)
      : std::invalid_argument(where + ": expected shape " + expected + ", got " + actual),
        where_(where), expected_(expected), actual_(actual) {}

  const std::string& where() const noexcept { return where_; }
  const std::string& expected() const noexcept { return expected_; }
  const std::string& actual() const noexcept { return actual_; }

 private:
  std::string where_, expected_, actual_;
};

namespace detail {

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
