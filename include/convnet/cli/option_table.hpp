// Command lines: each option is declared once, in a table, and that table
// drives the parsing, the --help text and the record of a run's settings that
// checkpoints keep (the convnet program's subcommands are written with it, and
// so can a user's own program be).
//
//   long epochs = 16;
//   cli::OptionTable table("usage: prog [options]", {
//       {"training", {{"--epochs", "N", "epochs to train", &epochs, cli::Recorded}}},
//   });
//   table.parse(argc, argv);          // --epochs 3 or --epochs=3; errors name the option
//   table.record();                   // "epochs=3\n": what a resumed run restores
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <ostream>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "../errors.hpp"
#include "../key_values.hpp"

namespace convnet::cli {

/// Recorded options are part of a run: checkpoints keep them and a resumed run takes them back.
enum Scope { PerProcess, Recorded };

/// The values a number option accepts: [lo, hi], or (lo, hi] when `lo_open`. Checked when the
/// option is given and when it is restored from a record (a checkpoint can say anything).
struct Range {
  double lo = -std::numeric_limits<double>::infinity(), hi = std::numeric_limits<double>::infinity();
  bool lo_open = false;

  static Range closed(double lo, double hi) { return {lo, hi, false}; }
  static Range above(double lo, double hi) { return {lo, hi, true}; }
  bool contains(double v) const { return (lo_open ? v > lo : v >= lo) && v <= hi; }  // false for NaN
  std::string str() const {
    auto number = [](double v) {  // whole numbers in full (100000, not 1e+05)
      if (v == std::floor(v) && std::fabs(v) < 1e16) return std::to_string(static_cast<long long>(v));
      char buffer[32];
      return std::string(buffer, std::to_chars(buffer, buffer + sizeof buffer, v).ptr);
    };
    return (lo_open ? "(" : "[") + number(lo) + ", " + number(hi) + "]";
  }
};

struct Option {
  using Target = std::variant<std::string*, long*, double*, bool*>;
  Option(std::string name_, std::string value_name_, std::string help_, Target target_, Scope scope_ = PerProcess,
         Range range_ = Range())
      : name(std::move(name_)), value_name(std::move(value_name_)), help(std::move(help_)), target(target_),
        scope(scope_), range(range_) {}

  std::string name;        ///< "--epochs"
  std::string value_name;  ///< "N"; empty for a switch (a bool target)
  std::string help;        ///< one line; "(default ...)" is added from the target unless the help has its own
  Target target;
  Scope scope = PerProcess;
  Range range;  ///< for long and double targets

  /// The key in a run's record: the name without "--", '-' as '_'.
  std::string key() const {
    std::string k = name.substr(2);
    std::replace(k.begin(), k.end(), '-', '_');
    return k;
  }
  bool is_switch() const { return std::holds_alternative<bool*>(target); }
  /// The value as text: numbers in their shortest exact form, so record() and restore() round-trip.
  std::string value() const {
    if (auto* d = std::get_if<double*>(&target)) {
      char buffer[32];
      return std::string(buffer, std::to_chars(buffer, buffer + sizeof buffer, **d).ptr);
    }
    std::ostringstream out;
    std::visit([&](auto* p) { out << *p; }, target);
    return out.str();
  }
  /// Sets the target from text (numbers locale-free, the whole text or an error); throws ArgumentError
  /// naming the option when the text does not fit its type or range.
  void set(const std::string& text) const {
    if (auto* s = std::get_if<std::string*>(&target)) {
      if (text.find_first_of("\n\r") != std::string::npos) {  // a record keeps one setting a line
        throw ArgumentError(name + " must not contain a line break");
      }
      **s = text;
      return;
    }
    if (auto* b = std::get_if<bool*>(&target)) {
      **b = text == "1" || text == "true";
      return;
    }
    const bool whole = std::holds_alternative<long*>(target);
    double number = 0;
    try {
      if (auto* l = std::get_if<long*>(&target)) number = static_cast<double>(**l = detail::parse_number<long>(text));
      if (auto* d = std::get_if<double*>(&target)) number = **d = detail::parse_number<double>(text);
    } catch (const ArgumentError&) {  // not a number, or out of a long's range
      throw ArgumentError(name + (whole ? " needs an integer" : " needs a number") + " in " + range.str() + ", got '" +
                          text + "'");
    }
    if (!range.contains(number)) throw ArgumentError(name + " must be in " + range.str() + ", got " + text);
  }
};

/// Options listed together under a heading in --help.
struct Section {
  std::string title;
  std::vector<Option> options;
};

class OptionTable {
 public:
  OptionTable(std::string synopsis, const std::vector<Section>& sections) : synopsis_(std::move(synopsis)) {
    for (const auto& s : sections) {
      for (const auto& o : s.options) {
        options_.push_back(o);
        titles_.push_back(s.title);
        defaults_.push_back(o.value());
      }
    }
  }

  /// Sets every option given; returns the other arguments. Throws for an unknown option or a missing value.
  std::vector<std::string> parse(int argc, char** argv) {
    std::vector<std::string> positional;
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      if (a.rfind("--", 0) != 0 && a != "-h") {
        positional.push_back(a);
        continue;
      }
      const auto eq = a.find('=');
      const Option& o = find(a == "-h" ? "--help" : a.substr(0, eq));
      if (eq != std::string::npos) {
        o.set(a.substr(eq + 1));
      } else if (o.is_switch()) {
        o.set("1");
      } else {
        if (i + 1 >= argc) throw ArgumentError(a + " needs a value");
        o.set(argv[++i]);
      }
      given_.push_back(o.name);
    }
    return positional;
  }

  bool given(const std::string& name) const { return std::find(given_.begin(), given_.end(), name) != given_.end(); }

  /// "key=value" lines of the recorded options.
  std::string record() const {
    std::string out;
    for (const auto& o : options_) {
      if (o.scope == Recorded) out += o.key() + "=" + o.value() + "\n";
    }
    return out;
  }

  /// Takes the recorded options back from record()'s text; keys it does not know are skipped (a
  /// checkpoint may come from a version with options this one no longer has).
  void restore(const std::string& text) {
    const KeyValues record = KeyValues::parse(text, '\n', "the recorded settings");
    for (const auto& [key, value] : record.pairs()) {
      for (const auto& o : options_) {
        if (o.scope == Recorded && o.key() == key) o.set(value);
      }
    }
  }

  void print_usage(std::ostream& out) const {
    out << synopsis_ << "\n";
    for (std::size_t i = 0; i < options_.size(); ++i) {
      const Option& o = options_[i];
      if (i == 0 || titles_[i] != titles_[i - 1]) out << titles_[i] << "\n";
      std::string left = "  " + o.name + (o.value_name.empty() ? "" : " " + o.value_name);
      left.resize(std::max<std::size_t>(left.size() + 2, 24), ' ');
      std::string help = o.help;
      // The default, unless the help says it already (or says what 0 means) or there is none.
      const bool said = help.find("(default") != std::string::npos || help.find("(0:") != std::string::npos;
      if (!o.is_switch() && !said && !defaults_[i].empty()) help += " (default " + defaults_[i] + ")";
      out << left << help << "\n";
    }
  }

 private:
  const Option& find(const std::string& name) const {
    for (const auto& o : options_) {
      if (o.name == name) return o;
    }
    throw ArgumentError("unknown option " + name + " (see --help)");
  }

  std::string synopsis_;
  std::vector<Option> options_;
  std::vector<std::string> titles_, defaults_;
  std::vector<std::string> given_;
};

}  // namespace convnet::cli
