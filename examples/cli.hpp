// Command-line helpers shared by the examples: "--name value" flags with
// typed readers that name the flag in their errors.
#pragma once

#include <cstdlib>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace cli {

class Args {
 public:
  /// `flags` are the options that take no value (e.g. --help, --ten-crop).
  Args(int argc, char** argv, const std::vector<std::string>& flags) {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (a.rfind("--", 0) != 0) {
        positional_.push_back(a);
        continue;
      }
      const auto eq = a.find('=');
      if (eq != std::string::npos) {
        values_[a.substr(0, eq)] = a.substr(eq + 1);
      } else if (is_flag(flags, a)) {
        values_[a] = "1";
      } else {
        if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
        values_[a] = argv[++i];
      }
    }
  }
  bool has(const std::string& name) const { return values_.count(name) != 0; }
  std::string str(const std::string& name, const std::string& fallback) const {
    auto it = values_.find(name);
    return it == values_.end() ? fallback : it->second;
  }
  long integer(const std::string& name, long fallback) const {
    if (!has(name)) return fallback;
    try {
      std::size_t used = 0;
      const long v = std::stol(values_.at(name), &used);
      if (used != values_.at(name).size()) throw std::invalid_argument("");
      return v;
    } catch (const std::exception&) {
      throw std::invalid_argument(name + " needs an integer, got '" + values_.at(name) + "'");
    }
  }
  double real(const std::string& name, double fallback) const {
    if (!has(name)) return fallback;
    try {
      std::size_t used = 0;
      const double v = std::stod(values_.at(name), &used);
      if (used != values_.at(name).size()) throw std::invalid_argument("");
      return v;
    } catch (const std::exception&) {
      throw std::invalid_argument(name + " needs a number, got '" + values_.at(name) + "'");
    }
  }
  const std::vector<std::string>& positional() const { return positional_; }
  /// Throws for any option not in `known`.
  void check_known(const std::vector<std::string>& known) const {
    for (const auto& [name, value] : values_) {
      if (!is_flag(known, name)) throw std::invalid_argument("unknown option " + name + " (see --help)");
    }
  }

 private:
  static bool is_flag(const std::vector<std::string>& list, const std::string& name) {
    for (const auto& f : list) {
      if (f == name) return true;
    }
    return false;
  }
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_;
};

}  // namespace cli
