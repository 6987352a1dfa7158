// KeyValues: settings written as key=value, read back with their types. The one reader behind
// every such text the library keeps or takes: a layer's settings in a checkpoint's structure,
// AlexNet's configuration line, the picture preparation, a loss's settings in --loss
// ("contrastive(margin=0.5,normalize=1)") and the record of a run's options.
//
//   KeyValues kv = KeyValues::parse("name=cifar input=32 width=0.5", ' ', "AlexNetConfig");
//   const Index input = kv.take<Index>("input");        // required: an error names it when absent
//   const double width = kv.take("width", 1.0);         // with a default
//   kv.finish();                                        // any key nobody took is an error
//
// Numbers are read locale-free and whole (detail::parse_number): "0,5" or "4x" is an error naming
// the owner, the key and the text, never a silent 0. A key given twice is an error.
#pragma once

#include <algorithm>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "errors.hpp"

namespace convnet {

class KeyValues {
 public:
  using Pairs = std::vector<std::pair<std::string, std::string>>;

  /// `owner` opens every error message ("loss 'contrastive(margin=x)'", "layer conv1 (Conv2d)").
  KeyValues(Pairs pairs, std::string owner) : pairs_(std::move(pairs)), owner_(std::move(owner)) {
    for (std::size_t i = 0; i < pairs_.size(); ++i) {
      if (pairs_[i].first.empty()) fail("a setting has no key");
      for (std::size_t j = 0; j < i; ++j) {
        if (pairs_[j].first == pairs_[i].first) fail(pairs_[i].first + " is set twice");
      }
    }
  }

  /// "k=v<sep>k=v...": empty items are skipped; an item without '=' or with an empty key is an error.
  static KeyValues parse(const std::string& text, char separator, std::string owner) {
    Pairs pairs;
    std::size_t at = 0;
    while (at <= text.size()) {
      std::size_t end = text.find(separator, at);
      if (end == std::string::npos) end = text.size();
      const std::string item = text.substr(at, end - at);
      at = end + 1;
      if (item.empty()) continue;
      const std::size_t eq = item.find('=');
      if (eq == std::string::npos || eq == 0) {
        throw ArgumentError(owner + ": '" + item + "' is not key=value");
      }
      pairs.emplace_back(item.substr(0, eq), item.substr(eq + 1));
    }
    return KeyValues(std::move(pairs), std::move(owner));
  }

  bool has(const std::string& key) const { return find(key) != nullptr; }
  const Pairs& pairs() const { return pairs_; }
  const std::string& owner() const { return owner_; }

  /// The value of `key` as V (std::string, bool as 0/1/true/false, or a number); an error when absent.
  template <class V>
  V take(const std::string& key) {
    taken_.push_back(key);
    const std::string* text = find(key);
    if (text == nullptr) fail("needs " + key);
    return convert<V>(key, *text);
  }
  /// The value of `key` as V, or `fallback` when it is not set.
  template <class V>
  V take(const std::string& key, V fallback) {
    taken_.push_back(key);
    const std::string* text = find(key);
    return text == nullptr ? fallback : convert<V>(key, *text);
  }
  std::string take(const std::string& key, const char* fallback) { return take<std::string>(key, std::string(fallback)); }

  /// Throws naming the first key no take() asked for, and the keys that were asked for.
  void finish() const {
    for (const auto& [key, value] : pairs_) {
      if (std::find(taken_.begin(), taken_.end(), key) != taken_.end()) continue;
      std::string list;
      for (std::size_t i = 0; i < taken_.size(); ++i) {
        if (std::find(taken_.begin(), taken_.begin() + static_cast<std::ptrdiff_t>(i), taken_[i]) != taken_.begin() + static_cast<std::ptrdiff_t>(i)) continue;
        list += (list.empty() ? "" : ", ") + taken_[i];
      }
      fail("unknown setting '" + key + "'" + (list.empty() ? " (it takes none)" : "; it takes " + list));
    }
  }

 private:
  template <class V>
  V convert(const std::string& key, const std::string& text) const {
    if constexpr (std::is_same<V, std::string>::value) {
      return text;
    } else if constexpr (std::is_same<V, bool>::value) {
      if (text == "1" || text == "true") return true;
      if (text == "0" || text == "false") return false;
      fail(key + " is 0 or 1, got '" + text + "'");
    } else {
      try {
        return detail::parse_number<V>(text);
      } catch (const ArgumentError&) {
        fail(key + " is not a number: '" + text + "'");
      }
    }
    return V{};  // not reached: fail() throws
  }
  const std::string* find(const std::string& key) const {
    for (const auto& p : pairs_) {
      if (p.first == key) return &p.second;
    }
    return nullptr;
  }
  [[noreturn]] void fail(const std::string& why) const { throw ArgumentError(owner_ + ": " + why); }

  Pairs pairs_;
  std::string owner_;
  std::vector<std::string> taken_;
};

}  // namespace convnet
