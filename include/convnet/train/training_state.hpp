// A network's training state in a checkpoint: the network with, when given, its optimizer and
// learning-rate schedule, saved and loaded together through their one save/load pair
// (checkpoint/state.hpp), all or nothing.
//
// Keys: the network's (models/network_state.hpp: structure, param/..., buffer/..., layer_state/...),
// optimizer/type, optimizer/steps, optimizer/<buffer>, schedule/type, schedule/state. Callers add
// their own (the trainer: its position and history; the convnet program: the configuration, the
// data statistics and the class names).
#pragma once

#include <vector>

#include "../checkpoint/format.hpp"
#include "../checkpoint/state.hpp"
#include "../models/sequential.hpp"
#include "../optim/optimizer.hpp"
#include "../optim/schedules.hpp"

namespace convnet {

namespace detail {
template <class T>
std::vector<StatePart> training_parts(Sequential<T>& net, Optimizer<T>* optimizer, LrSchedule* schedule) {
  std::vector<StatePart> parts{state_part(net, "")};
  if (optimizer) parts.push_back(state_part(*optimizer, "optimizer/"));
  if (schedule) parts.push_back(state_part(*schedule, "schedule/"));
  return parts;
}
}  // namespace detail

/// Puts the network (and, when given, the optimizer and schedule) into `c`.
template <class T>
void save_training_state(Checkpoint& c, Sequential<T>& net, Optimizer<T>* optimizer = nullptr,
                         const LrSchedule* schedule = nullptr) {
  save_all(c, detail::training_parts(net, optimizer, const_cast<LrSchedule*>(schedule)));
}

/// Takes back what save_training_state() wrote. On any mismatch a CheckpointError names it and
/// nothing has changed.
template <class T>
void restore_training_state(const Checkpoint& c, Sequential<T>& net, Optimizer<T>* optimizer = nullptr,
                            LrSchedule* schedule = nullptr) {
  load_all(c, detail::training_parts(net, optimizer, schedule));
}

}  // namespace convnet
