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

inline const std::vector<std::string>& optimizer_names() {
  static const std::vector<std::string> names{"sgd", "adam"};
  return names;
}
inline const std::vector<std::string>& schedule_names() {
  static const std::vector<std::string> names{"onecycle", "cosine", "step", "plateau", "constant"};
  return names;
}

template <class T>
std::unique_ptr<Optimizer<T>> make_optimizer(const TrainingRecipe& r, std::vector<Parameter<T>> parameters) {
  if (r.optimizer() == "sgd") {
    return std::make_unique<Sgd<T>>(std::move(parameters), SgdOptions(r.lr())
                                                               .momentum(r.momentum())
                                                               .weight_decay(r.weight_decay())
                                                               .nesterov(r.nesterov()));
  }
  if (r.optimizer() == "adam") {
    return std::make_unique<Adam<T>>(std::move(parameters), AdamOptions(r.lr()).weight_decay(r.weight_decay()));
  }
  throw ArgumentError("unknown optimizer '" + r.optimizer() + "'; valid names are sgd, adam");
}

inline std::unique_ptr<LrSchedule> make_schedule(const TrainingRecipe& r) {
  const Index total = std::max<Index>(2, r.epochs() * r.steps_per_epoch());
  const std::string& name = r.schedule();
  if (name == "onecycle") {
    return std::make_unique<OneCycleLR>(OneCycleLROptions(r.lr(), total).momentum_range(
        std::max(0.0, r.momentum() - 0.05), std::min(0.999, r.momentum() + 0.05)));
  }
  if (name == "cosine") return std::make_unique<CosineLR>(CosineLROptions(r.lr(), total));
  if (name == "step") return std::make_unique<StepLR>(StepLROptions(r.lr(), std::max<long>(1, r.epochs() / 3)));
  if (name == "plateau") {
    return std::make_unique<ReduceOnPlateau>(
        ReduceOnPlateauOptions(r.lr()).patience(1).threshold(1e-3).max_reductions(3));
  }
  if (name == "constant") return std::make_unique<ConstantLR>(r.lr());
  throw ArgumentError("unknown schedule '" + name + "'; valid names are onecycle, cosine, step, plateau, "
                              "constant");
}

}  // namespace convnet
