// The one way state is saved. Every object that keeps state across a restart (a network, an
// optimizer, a schedule, a weight average, the picture preparation, a trainer) has the pair
//
//   void save(Checkpoint& c, const std::string& prefix) const;   // its entries, each key under prefix
//   void load(const Checkpoint& c, const std::string& prefix);   // checks every entry it needs against
//                                                                 // itself, then takes them; on any
//                                                                 // error (a CheckpointError naming the
//                                                                 // file and the entry) nothing changed
//
// with a default prefix that keeps the keys of earlier checkpoints ("optimizer/", "schedule/",
// "average/", "data/", "trainer/"; "" for the network). load_all() loads several objects all or
// nothing. The format below (format.hpp) knows none of them: it is the floor they stand on.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "format.hpp"

namespace convnet {

/// One object's part of a checkpoint, as its save/load pair under its prefix.
struct StatePart {
  std::function<void(Checkpoint&)> save;
  std::function<void(const Checkpoint&)> load;
};

/// `object`'s pair under `prefix` (the object must outlive the part).
template <class Object>
StatePart state_part(Object& object, const std::string& prefix) {
  return {[&object, prefix](Checkpoint& c) { object.save(c, prefix); },
          [&object, prefix](const Checkpoint& c) { object.load(c, prefix); }};
}

/// Saves every part into `c`.
inline void save_all(Checkpoint& c, const std::vector<StatePart>& parts) {
  for (const auto& part : parts) part.save(c);
}

/// Loads every part from `c`, or none: each load checks before it changes anything, and when a later
/// one fails the earlier ones are given back what they held (saved first, for that).
inline void load_all(const Checkpoint& c, const std::vector<StatePart>& parts) {
  Checkpoint before;
  if (parts.size() > 1) save_all(before, std::vector<StatePart>(parts.begin(), parts.end() - 1));
  std::size_t loaded = 0;
  try {
    for (; loaded < parts.size(); ++loaded) parts[loaded].load(c);
  } catch (...) {
    for (std::size_t i = 0; i < loaded; ++i) parts[i].load(before);
    throw;
  }
}

}  // namespace convnet
