// Learning-rate schedules, apart from the optimizers (as PyTorch's schedulers).
//
// A schedule owns the current rate; the training loop copies it into the
// optimizer (optimizer.set_learning_rate(schedule.learning_rate())) before each
// step, calls step() after each optimizer step and epoch_end() after each
// epoch with that epoch's validation loss. Per-step schedules (cosine,
// one-cycle) move in step(), per-epoch ones (step, plateau) in epoch_end().
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "../errors.hpp"

namespace convnet {

class LrSchedule {
 public:
  virtual ~LrSchedule() = default;
  virtual std::string describe() const = 0;
  virtual double learning_rate() const = 0;
  /// The momentum this schedule prescribes for the next step, or a negative
  /// value when it leaves momentum alone (only one-cycle cycles it).
  virtual double momentum() const { return -1.0; }
  virtual void step() {}
  virtual void epoch_end(double /*validation_loss*/) {}
  /// Everything that decides future rates, for checkpoints.
  virtual std::vector<double> state() const = 0;
  virtual void set_state(const std::vector<double>& state) = 0;

 protected:
  void check_state(const std::vector<double>& s, std::size_t expected) const {
    if (s.size() != expected) {
      throw std::invalid_argument(detail::concat(describe(), ": schedule state needs ", expected, " values, got ",
                                                 s.size()));
    }
  }
  /// A step or epoch counter from a state vector: a whole number in [0, 2^53]
  /// (a NaN or a huge value from a damaged checkpoint is refused, not cast).
  std::int64_t state_count(double v, const char* what) const {
    if (!(v >= 0 && v <= 9007199254740992.0) || v != std::floor(v)) {
      throw std::invalid_argument(detail::concat(describe(), ": schedule state ", what, " must be a whole number >= 0, got ", v));
    }
    return static_cast<std::int64_t>(v);
  }
  /// A learning rate from a state vector: finite and >= 0.
  double state_rate(double v) const {
    if (!(v >= 0) || !std::isfinite(v)) {
      throw std::invalid_argument(detail::concat(describe(), ": schedule state learning rate must be finite and >= 0, got ", v));
    }
    return v;
  }
};

/// A fixed rate.
class ConstantLR : public LrSchedule {
 public:
  explicit ConstantLR(double lr) : lr_(lr) { detail::require_option(lr >= 0, "ConstantLR", "lr", ">= 0", lr); }
  std::string describe() const override { return detail::concat("constant(", lr_, ")"); }
  double learning_rate() const override { return lr_; }
  std::vector<double> state() const override { return {}; }
  void set_state(const std::vector<double>& s) override { check_state(s, 0); }

 private:
  double lr_;
};

/// lr = base * gamma^floor(epoch / step_epochs).
class StepLR : public LrSchedule {
 public:
  StepLR(double base, std::int64_t step_epochs, double gamma = 0.1) : base_(base), step_(step_epochs), gamma_(gamma) {
    detail::require_option(base >= 0, "StepLR", "base lr", ">= 0", base);
    detail::require_option(step_epochs >= 1, "StepLR", "step_epochs", ">= 1", step_epochs);
    detail::require_option(gamma > 0, "StepLR", "gamma", "> 0", gamma);
  }
  std::string describe() const override { return detail::concat("step(", base_, ", every ", step_, ", x", gamma_, ")"); }
  double learning_rate() const override {
    return base_ * std::pow(gamma_, static_cast<double>(epoch_ / step_));
  }
  void epoch_end(double) override { ++epoch_; }
  std::vector<double> state() const override { return {static_cast<double>(epoch_)}; }
  void set_state(const std::vector<double>& s) override {
    check_state(s, 1);
    epoch_ = state_count(s[0], "epoch");
  }

 private:
  double base_;
  std::int64_t step_, epoch_ = 0;
  double gamma_;
};

/// The paper's schedule (§5): divide the rate by 10 (factor 0.1) when the
/// validation loss has not improved (by a relative threshold) for more than
/// `patience` epochs; at most `max_reductions` times (the paper: three).
class ReduceOnPlateau : public LrSchedule {
 public:
  ReduceOnPlateau(double base, double factor = 0.1, std::int64_t patience = 0, double threshold = 1e-4,
                  std::int64_t max_reductions = std::numeric_limits<std::int64_t>::max())
      : lr_(base), factor_(factor), patience_(patience), threshold_(threshold), max_reductions_(max_reductions) {
    detail::require_option(base >= 0, "ReduceOnPlateau", "base lr", ">= 0", base);
    detail::require_option(factor > 0 && factor < 1, "ReduceOnPlateau", "factor", "in (0, 1)", factor);
    detail::require_option(patience >= 0, "ReduceOnPlateau", "patience", ">= 0", patience);
  }
  std::string describe() const override {
    return detail::concat("plateau(x", factor_, ", patience ", patience_, ")");
  }
  double learning_rate() const override { return lr_; }
  void epoch_end(double validation_loss) override {
    if (validation_loss < best_ * (1.0 - threshold_)) {
      best_ = validation_loss;
      bad_epochs_ = 0;
      return;
    }
    if (++bad_epochs_ > patience_ && reductions_ < max_reductions_) {
      lr_ *= factor_;
      ++reductions_;
      bad_epochs_ = 0;
    }
  }
  std::int64_t reductions() const { return reductions_; }
  std::vector<double> state() const override {
    return {lr_, best_, static_cast<double>(bad_epochs_), static_cast<double>(reductions_)};
  }
  void set_state(const std::vector<double>& s) override {
    check_state(s, 4);
    const double lr = state_rate(s[0]);
    if (std::isnan(s[1])) throw std::invalid_argument(describe() + ": schedule state best loss is NaN");
    const std::int64_t bad_epochs = state_count(s[2], "bad epochs"), reductions = state_count(s[3], "reductions");
    lr_ = lr;
    best_ = s[1];
    bad_epochs_ = bad_epochs;
    reductions_ = reductions;
  }

 private:
  double lr_, factor_;
  std::int64_t patience_;
  double threshold_;
  std::int64_t max_reductions_;
  double best_ = std::numeric_limits<double>::infinity();
  std::int64_t bad_epochs_ = 0, reductions_ = 0;
};

/// A schedule that is a function of the optimizer steps taken: its whole
/// state is that count.
class PerStepSchedule : public LrSchedule {
 public:
  void step() override { ++step_; }
  std::vector<double> state() const override { return {static_cast<double>(step_)}; }
  void set_state(const std::vector<double>& s) override {
    check_state(s, 1);
    step_ = state_count(s[0], "step");
  }

 protected:
  std::int64_t step_ = 0;
};

namespace detail {
/// From `start` (pct 0) to `end` (pct 1) along half a cosine.
inline double cosine_anneal(double start, double end, double pct) {
  return end + (start - end) / 2.0 * (std::cos(3.14159265358979323846 * pct) + 1.0);
}
}  // namespace detail

/// lr(t) = min + (base - min) * (1 + cos(pi t / total)) / 2, per optimizer step.
class CosineLR : public PerStepSchedule {
 public:
  CosineLR(double base, std::int64_t total_steps, double min_lr = 0) : base_(base), min_(min_lr), total_(total_steps) {
    detail::require_option(total_steps >= 1, "CosineLR", "total_steps", ">= 1", total_steps);
  }
  std::string describe() const override { return detail::concat("cosine(", base_, " -> ", min_, ", ", total_, " steps)"); }
  double learning_rate() const override {
    const double pct = static_cast<double>(std::min(step_, total_)) / static_cast<double>(total_);
    return detail::cosine_anneal(base_, min_, pct);
  }

 private:
  double base_, min_;
  std::int64_t total_;
};

/// One-cycle (Smith & Topin 2017), in PyTorch's cosine form: from
/// max/div_factor up to max over the first pct_start of the steps, then down
/// to max/(div_factor*final_div_factor) at the last step. Like PyTorch's
/// OneCycleLR it also cycles momentum the other way, from max_momentum down
/// to base_momentum while the rate rises and back while it falls (pass
/// base_momentum < 0 to leave momentum alone): high momentum with a high rate
/// is what makes the peak unstable.
class OneCycleLR : public PerStepSchedule {
 public:
  OneCycleLR(double max_lr, std::int64_t total_steps, double pct_start = 0.25, double div_factor = 25,
             double final_div_factor = 1e4, double base_momentum = 0.85, double max_momentum = 0.95)
      : max_(max_lr), total_(total_steps), pct_start_(pct_start), initial_(max_lr / div_factor),
        final_(max_lr / div_factor / final_div_factor), base_momentum_(base_momentum), max_momentum_(max_momentum) {
    detail::require_option(total_steps >= 2, "OneCycleLR", "total_steps", ">= 2", total_steps);
    detail::require_option(pct_start > 0 && pct_start < 1, "OneCycleLR", "pct_start", "in (0, 1)", pct_start);
    detail::require_option(div_factor > 0, "OneCycleLR", "div_factor", "> 0", div_factor);
    detail::require_option(final_div_factor > 0, "OneCycleLR", "final_div_factor", "> 0", final_div_factor);
  }
  std::string describe() const override {
    return detail::concat("one-cycle(max ", max_, ", ", total_, " steps, warm-up ", pct_start_, ")");
  }
  double learning_rate() const override {
    const double pct = progress();
    return warming_up() ? detail::cosine_anneal(initial_, max_, pct) : detail::cosine_anneal(max_, final_, pct);
  }
  double momentum() const override {
    if (base_momentum_ < 0) return -1.0;
    const double pct = progress();
    return warming_up() ? detail::cosine_anneal(max_momentum_, base_momentum_, pct)
                        : detail::cosine_anneal(base_momentum_, max_momentum_, pct);
  }

 private:
  double warm_end() const { return pct_start_ * static_cast<double>(total_) - 1.0; }
  double t() const { return static_cast<double>(std::min(step_, total_ - 1)); }
  bool warming_up() const { return t() <= warm_end(); }
  // Progress through the current phase, 0 to 1.
  double progress() const {
    if (warming_up()) return warm_end() <= 0 ? 1.0 : t() / warm_end();
    return (t() - warm_end()) / (static_cast<double>(total_ - 1) - warm_end());
  }

  double max_;
  std::int64_t total_;
  double pct_start_, initial_, final_, base_momentum_, max_momentum_;
};

}  // namespace convnet
