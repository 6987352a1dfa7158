// A loss named with its settings, as the trainer's --loss and make_objective
// read it and as Loss::describe writes it:
//
//   contrastive                         the defaults
//   contrastive(margin=0.5,normalize=1) margin 0.5 on L2-normalised embeddings
//
// parse_loss_spec splits the name from its settings; LossSettings hands them
// to the loss's options one by one and, once the loss is built, refuses any
// it did not take (a misspelt setting is an error naming the loss and the
// settings it accepts, never silently ignored).
#pragma once

#include <cmath>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "../errors.hpp"

namespace convnet {

class LossSettings {
 public:
  LossSettings() = default;
  LossSettings(std::string spec, std::map<std::string, double> values)
      : spec_(std::move(spec)), values_(std::move(values)) {}

  /// The value of `key`, or `fallback` when the spec does not set it.
  double take(const std::string& key, double fallback) {
    accepted_.push_back(key);
    const auto it = values_.find(key);
    return it == values_.end() ? fallback : it->second;
  }
  /// A flag: 0 or 1.
  bool take_flag(const std::string& key, bool fallback) {
    const double v = take(key, fallback ? 1 : 0);
    if (v != 0 && v != 1) throw ArgumentError("loss '" + spec_ + "': " + key + " is 0 or 1, got " + text(v));
    return v == 1;
  }
  /// Throws when the spec set something no take() asked for.
  void require_all_taken() const {
    for (const auto& [key, value] : values_) {
      bool known = false;
      for (const auto& a : accepted_) known = known || a == key;
      if (known) continue;
      std::string list;
      for (const auto& a : accepted_) list += (list.empty() ? "" : ", ") + a;
      throw ArgumentError("loss '" + spec_ + "': unknown setting '" + key + "'" +
                                  (list.empty() ? " (this loss takes none)" : "; it takes " + list));
    }
  }

 private:
  static std::string text(double v) {
    std::string s = std::to_string(v);
    return s;
  }
  std::string spec_;
  std::map<std::string, double> values_;
  std::vector<std::string> accepted_;
};

struct ParsedLossSpec {
  std::string name;
  LossSettings settings;
};

/// "name" or "name(key=value,...)": values are finite numbers, each key once.
inline ParsedLossSpec parse_loss_spec(const std::string& spec) {
  const auto fail = [&](const std::string& why) {
    return ArgumentError("loss '" + spec + "': " + why + " (expected name or name(key=value,...))");
  };
  const std::size_t open = spec.find('(');
  if (open == std::string::npos) {
    if (spec.find_first_of(")=,") != std::string::npos) throw fail("stray ')', '=' or ','");
    return {spec, LossSettings(spec, {})};
  }
  if (spec.back() != ')' || spec.find('(', open + 1) != std::string::npos || spec.find(')') != spec.size() - 1) {
    throw fail("unbalanced parentheses");
  }
  std::map<std::string, double> values;
  const std::string body = spec.substr(open + 1, spec.size() - open - 2);
  std::size_t at = 0;
  while (at <= body.size() && !body.empty()) {
    std::size_t end = body.find(',', at);
    if (end == std::string::npos) end = body.size();
    const std::string item = body.substr(at, end - at);
    const std::size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size()) throw fail("'" + item + "' is not key=value");
    const std::string key = item.substr(0, eq), number = item.substr(eq + 1);
    double value = 0;
    try {
      value = detail::parse_number<double>(number);
    } catch (const ArgumentError&) {
      throw fail("the value of " + key + " is not a number: '" + number + "'");
    }
    if (!std::isfinite(value)) throw fail("the value of " + key + " is not finite");
    if (!values.emplace(key, value).second) throw fail(key + " is set twice");
    at = end + 1;
  }
  return {spec.substr(0, open), LossSettings(spec, std::move(values))};
}

/// Splits "a(x=1)+b" at the '+' outside parentheses (a value such as 1e+3 stays whole).
inline std::vector<std::string> split_loss_terms(const std::string& spec) {
  std::vector<std::string> parts(1);
  int depth = 0;
  for (const char c : spec) {
    depth += c == '(' ? 1 : c == ')' ? -1 : 0;
    if (c == '+' && depth == 0) {
      parts.emplace_back();
    } else {
      parts.back() += c;
    }
  }
  return parts;
}

}  // namespace convnet
