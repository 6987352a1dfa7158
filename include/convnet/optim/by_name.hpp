// Optimizers and learning-rate schedules chosen by name, as command lines and
// configuration files name them:
//   optimizers: sgd (momentum, optional Nesterov), adam
//   schedules:  onecycle, cosine, step (x0.1 every third of the run),
//               plateau (x0.1 after 1 epoch without a 0.1% gain, at most 3 times), constant
// One-cycle swings momentum 0.05 either side of the given momentum (0.95 ->
// 0.85 -> 0.95 at 0.9, as PyTorch's default does).
#pragma once

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "../errors.hpp"
#include "../parameter.hpp"
#include "adam.hpp"
#include "optimizer.hpp"
#include "schedules.hpp"
#include "sgd.hpp"

namespace convnet {

struct TrainingRecipe {
  TrainingRecipe& optimizer(std::string v) { optimizer_ = std::move(v); return *this; }
  TrainingRecipe& schedule(std::string v) { schedule_ = std::move(v); return *this; }
  /// The peak rate of one-cycle and cosine, the starting rate of the others.
  TrainingRecipe& lr(double v) { lr_ = v; return *this; }
  TrainingRecipe& momentum(double v) { momentum_ = v; return *this; }
  TrainingRecipe& nesterov(bool v) { nesterov_ = v; return *this; }
  TrainingRecipe& weight_decay(double v) { weight_decay_ = v; return *this; }
  TrainingRecipe& epochs(long v) { epochs_ = v; return *this; }
  TrainingRecipe& steps_per_epoch(Index v) { steps_per_epoch_ = v; return *this; }

  const std::string& optimizer() const { return optimizer_; }
  const std::string& schedule() const { return schedule_; }
  double lr() const { return lr_; }
  double momentum() const { return momentum_; }
  bool nesterov() const { return nesterov_; }
  double weight_decay() const { return weight_decay_; }
  long epochs() const { return epochs_; }
  Index steps_per_epoch() const { return steps_per_epoch_; }

 private:
  std::string optimizer_ = "sgd", schedule_ = "onecycle";
  double lr_ = 0.05, momentum_ = 0.9, weight_decay_ = 5e-4;
  bool nesterov_ = true;
  long epochs_ = 1;
  Index steps_per_epoch_ = 1;
};

/// An optimizer by the name --optimizer takes, with one line of help and its factory.
template <class T>
struct OptimizerType {
  std::string name, help;
  std::unique_ptr<Optimizer<T>> (*make)(const TrainingRecipe& recipe, std::vector<Parameter<T>> parameters);
};

/// Every optimizer --optimizer names: the one list.
template <class T>
const std::vector<OptimizerType<T>>& optimizer_types() {
  using P = std::vector<Parameter<T>>;
  static const std::vector<OptimizerType<T>> types = {
      {"sgd", "SGD with momentum, Nesterov unless --no-nesterov",
       [](const TrainingRecipe& r, P p) -> std::unique_ptr<Optimizer<T>> {
         return std::make_unique<Sgd<T>>(
             std::move(p), SgdOptions(r.lr()).momentum(r.momentum()).weight_decay(r.weight_decay()).nesterov(r.nesterov()));
       }},
      {"adam", "Adam (L2 weight decay added to the gradient)",
       [](const TrainingRecipe& r, P p) -> std::unique_ptr<Optimizer<T>> {
         return std::make_unique<Adam<T>>(std::move(p), AdamOptions(r.lr()).weight_decay(r.weight_decay()));
       }},
  };
  return types;
}

/// A learning-rate schedule by the name --schedule takes, with one line of help and its factory.
struct ScheduleType {
  std::string name, help;
  std::unique_ptr<LrSchedule> (*make)(const TrainingRecipe& recipe);
};

namespace detail {
/// The run's length in steps, at least 2 (a one-step run still has a start and an end).
inline Index schedule_steps(const TrainingRecipe& r) { return std::max<Index>(2, r.epochs() * r.steps_per_epoch()); }
}  // namespace detail

/// Every schedule --schedule names: the one list.
inline const std::vector<ScheduleType>& schedule_types() {
  using P = std::unique_ptr<LrSchedule>;
  static const std::vector<ScheduleType> types = {
      {"onecycle", "one cycle: warm up to the peak rate, anneal to near zero; momentum swings 0.05 the other way",
       [](const TrainingRecipe& r) -> P {
         return std::make_unique<OneCycleLR>(OneCycleLROptions(r.lr(), detail::schedule_steps(r))
                                                 .momentum_range(std::max(0.0, r.momentum() - 0.05),
                                                                 std::min(0.999, r.momentum() + 0.05)));
       }},
      {"linear", "a triangle: from a fifth of the rate up to it over the first 23% of the steps, then straight down to 0",
       [](const TrainingRecipe& r) -> P {
         return std::make_unique<LinearLR>(LinearLROptions(r.lr(), detail::schedule_steps(r)));
       }},
      {"cosine", "cosine annealing from the rate to near zero, per step",
       [](const TrainingRecipe& r) -> P {
         return std::make_unique<CosineLR>(CosineLROptions(r.lr(), detail::schedule_steps(r)));
       }},
      {"step", "x0.1 every third of the run",
       [](const TrainingRecipe& r) -> P {
         return std::make_unique<StepLR>(StepLROptions(r.lr(), std::max<long>(1, r.epochs() / 3)));
       }},
      {"plateau", "x0.1 after an epoch without a 0.1% lower validation loss, at most 3 times",
       [](const TrainingRecipe& r) -> P {
         return std::make_unique<ReduceOnPlateau>(ReduceOnPlateauOptions(r.lr()).patience(1).threshold(1e-3).max_reductions(3));
       }},
      {"constant", "the rate throughout", [](const TrainingRecipe& r) -> P { return std::make_unique<ConstantLR>(r.lr()); }},
  };
  return types;
}

namespace detail {
/// "a, b or c" of a registry's names.
template <class Types>
std::string name_list(const Types& types) {
  std::string list;
  for (std::size_t i = 0; i < types.size(); ++i) {
    list += (i == 0 ? "" : i + 1 == types.size() ? " or " : ", ") + types[i].name;
  }
  return list;
}
}  // namespace detail

template <class T>
std::unique_ptr<Optimizer<T>> make_optimizer(const TrainingRecipe& r, std::vector<Parameter<T>> parameters) {
  for (const auto& t : optimizer_types<T>()) {
    if (t.name == r.optimizer()) return t.make(r, std::move(parameters));
  }
  throw ArgumentError("unknown optimizer '" + r.optimizer() + "'; valid names are " + detail::name_list(optimizer_types<T>()));
}

inline std::unique_ptr<LrSchedule> make_schedule(const TrainingRecipe& r) {
  for (const auto& t : schedule_types()) {
    if (t.name == r.schedule()) return t.make(r);
  }
  throw ArgumentError("unknown schedule '" + r.schedule() + "'; valid names are " + detail::name_list(schedule_types()));
}

}  // namespace convnet
