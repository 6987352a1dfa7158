// A loss named with its settings, as the trainer's --loss and make_objective
// read it and as Loss::describe writes it:
//
//   contrastive                         the defaults
//   contrastive(margin=0.5,normalize=1) margin 0.5 on L2-normalised embeddings
//
// parse_loss_spec splits the name from its settings; the settings (a KeyValues,
// key_values.hpp) are handed to the loss's options one by one and, once the loss
// is built, any it did not take is refused (a misspelt setting is an error naming
// the loss and the settings it accepts, never silently ignored).
#pragma once

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "../errors.hpp"
#include "../key_values.hpp"

namespace convnet {

/// A loss's settings: taken one by one by the loss's factory (KeyValues::take), then finish()
/// refuses any the loss did not take, naming those it does.
using LossSettings = KeyValues;

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
    return {spec, LossSettings({}, "loss '" + spec + "'")};
  }
  if (spec.back() != ')' || spec.find('(', open + 1) != std::string::npos || spec.find(')') != spec.size() - 1) {
    throw fail("unbalanced parentheses");
  }
  KeyValues::Pairs values;
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
    for (const auto& kv : values) {
      if (kv.first == key) throw fail(key + " is set twice");
    }
    values.emplace_back(key, number);
    at = end + 1;
  }
  return {spec.substr(0, open), LossSettings(std::move(values), "loss '" + spec + "'")};
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
