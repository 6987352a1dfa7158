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
#include <optional>
#include <utility>
#include <memory>
#include <string>
#include <vector>

#include "../checkpoint/format.hpp"
#include "../errors.hpp"

namespace convnet {

class LrSchedule {
 public:
  virtual ~LrSchedule() = default;
  virtual std::string describe() const = 0;
  virtual double learning_rate() const = 0;
  /// The momentum this schedule prescribes for the next step; none when it
  /// leaves momentum alone (only one-cycle cycles it).
  virtual std::optional<double> momentum() const { return std::nullopt; }
  virtual void step() {}
  virtual void epoch_end(double /*validation_loss*/) {}
  /// Everything that decides future rates, for checkpoints.
  virtual std::vector<double> state() const = 0;
  virtual void set_state(const std::vector<double>& state) = 0;

  /// The schedule in a checkpoint under `prefix` (the one save/load pair, checkpoint/state.hpp):
  /// describe() names it, so a run resumed with other settings is refused.
  void save(Checkpoint& c, const std::string& prefix = "schedule/") const {
    c.set_text(prefix + "type", describe());
    c.set_f64s(prefix + "state", state());
  }
  /// Takes back what save() wrote; set_state checks everything before it assigns anything.
  void load(const Checkpoint& c, const std::string& prefix = "schedule/") {
    const std::string where = c.source();
    if (!c.contains(prefix + "state")) throw CheckpointError(where + ": holds no schedule state");
    if (!c.contains(prefix + "type") || c.text(prefix + "type") != describe()) {
      throw CheckpointError(where + ": schedule state is for " +
                            (c.contains(prefix + "type") ? c.text(prefix + "type") : "(no schedule)") + ", not " + describe());
    }
    if (c.f64s(prefix + "state").size() != state().size()) throw CheckpointError(where + ": schedule state has the wrong length");
    try {
      set_state(c.f64s(prefix + "state"));
    } catch (const ArgumentError& e) {
      throw CheckpointError(where + ": " + e.what());
    }
  }

 protected:
  void check_state(const std::vector<double>& s, std::size_t expected) const {
    if (s.size() != expected) {
      throw ArgumentError(detail::concat(describe(), ": schedule state needs ", expected, " values, got ",
                                                 s.size()));
    }
  }
  /// A step or epoch counter from a state vector: a whole number in [0, 2^53]
  /// (a NaN or a huge value from a damaged checkpoint is refused, not cast).
  std::int64_t state_count(double v, const char* what) const {
    if (!(v >= 0 && v <= 9007199254740992.0) || v != std::floor(v)) {
      throw ArgumentError(detail::concat(describe(), ": schedule state ", what, " must be a whole number >= 0, got ", v));
    }
    return static_cast<std::int64_t>(v);
  }
  /// A learning rate from a state vector: finite and >= 0.
  double state_rate(double v) const {
    if (!(v >= 0) || !std::isfinite(v)) {
      throw ArgumentError(detail::concat(describe(), ": schedule state learning rate must be finite and >= 0, got ", v));
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

struct StepLROptions {
  StepLROptions(double base_lr, std::int64_t step_epochs) : base_lr_(base_lr), step_epochs_(step_epochs) {}
  StepLROptions& gamma(double v) { gamma_ = v; return *this; }
  double base_lr() const { return base_lr_; }
  std::int64_t step_epochs() const { return step_epochs_; }
  double gamma() const { return gamma_; }

 private:
  double base_lr_;
  std::int64_t step_epochs_;
  double gamma_ = 0.1;
};

/// lr = base * gamma^floor(epoch / step_epochs).
class StepLR : public LrSchedule {
 public:
  explicit StepLR(const StepLROptions& o) : base_(o.base_lr()), step_(o.step_epochs()), gamma_(o.gamma()) {
    detail::require_option(base_ >= 0, "StepLR", "base lr", ">= 0", base_);
    detail::require_option(step_ >= 1, "StepLR", "step_epochs", ">= 1", step_);
    detail::require_option(gamma_ > 0, "StepLR", "gamma", "> 0", gamma_);
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

struct ReduceOnPlateauOptions {
  explicit ReduceOnPlateauOptions(double base_lr) : base_lr_(base_lr) {}
  ReduceOnPlateauOptions& factor(double v) { factor_ = v; return *this; }
  /// Epochs without improvement tolerated before a reduction.
  ReduceOnPlateauOptions& patience(std::int64_t v) { patience_ = v; return *this; }
  /// The relative gain that counts as an improvement.
  ReduceOnPlateauOptions& threshold(double v) { threshold_ = v; return *this; }
  /// At most this many reductions (the paper: three); unset: no limit.
  ReduceOnPlateauOptions& max_reductions(std::int64_t v) { max_reductions_ = v; return *this; }
  double base_lr() const { return base_lr_; }
  double factor() const { return factor_; }
  std::int64_t patience() const { return patience_; }
  double threshold() const { return threshold_; }
  std::optional<std::int64_t> max_reductions() const { return max_reductions_; }

 private:
  double base_lr_, factor_ = 0.1;
  std::int64_t patience_ = 0;
  double threshold_ = 1e-4;
  std::optional<std::int64_t> max_reductions_;
};

/// The paper's schedule (§5): divide the rate by 10 (factor 0.1) when the
/// validation loss has not improved (by a relative threshold) for more than
/// `patience` epochs; at most `max_reductions` times (the paper: three).
class ReduceOnPlateau : public LrSchedule {
 public:
  explicit ReduceOnPlateau(const ReduceOnPlateauOptions& o)
      : lr_(o.base_lr()), factor_(o.factor()), patience_(o.patience()), threshold_(o.threshold()),
        max_reductions_(o.max_reductions().value_or(std::numeric_limits<std::int64_t>::max())) {
    detail::require_option(lr_ >= 0, "ReduceOnPlateau", "base lr", ">= 0", lr_);
    detail::require_option(factor_ > 0 && factor_ < 1, "ReduceOnPlateau", "factor", "in (0, 1)", factor_);
    detail::require_option(patience_ >= 0, "ReduceOnPlateau", "patience", ">= 0", patience_);
    detail::require_option(max_reductions_ >= 0, "ReduceOnPlateau", "max_reductions", ">= 0", max_reductions_);
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
    if (std::isnan(s[1])) throw ArgumentError(describe() + ": schedule state best loss is NaN");
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

struct CosineLROptions {
  CosineLROptions(double base_lr, std::int64_t total_steps) : base_lr_(base_lr), total_steps_(total_steps) {}
  CosineLROptions& min_lr(double v) { min_lr_ = v; return *this; }
  double base_lr() const { return base_lr_; }
  std::int64_t total_steps() const { return total_steps_; }
  double min_lr() const { return min_lr_; }

 private:
  double base_lr_;
  std::int64_t total_steps_;
  double min_lr_ = 0;
};

/// lr(t) = min + (base - min) * (1 + cos(pi t / total)) / 2, per optimizer step.
class CosineLR : public PerStepSchedule {
 public:
  explicit CosineLR(const CosineLROptions& o) : base_(o.base_lr()), min_(o.min_lr()), total_(o.total_steps()) {
    detail::require_option(total_ >= 1, "CosineLR", "total_steps", ">= 1", total_);
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

struct OneCycleLROptions {
  OneCycleLROptions(double max_lr, std::int64_t total_steps) : max_lr_(max_lr), total_steps_(total_steps) {}
  /// The share of the steps spent warming up.
  OneCycleLROptions& pct_start(double v) { pct_start_ = v; return *this; }
  /// The rate starts at max_lr / div_factor ...
  OneCycleLROptions& div_factor(double v) { div_factor_ = v; return *this; }
  /// ... and ends at max_lr / div_factor / final_div_factor.
  OneCycleLROptions& final_div_factor(double v) { final_div_factor_ = v; return *this; }
  /// Momentum swings from `high` down to `low` while the rate rises, and back.
  OneCycleLROptions& momentum_range(double low, double high) { momentum_ = std::make_pair(low, high); return *this; }
  /// Leave momentum alone.
  OneCycleLROptions& fixed_momentum() { momentum_.reset(); return *this; }
  double max_lr() const { return max_lr_; }
  std::int64_t total_steps() const { return total_steps_; }
  double pct_start() const { return pct_start_; }
  double div_factor() const { return div_factor_; }
  double final_div_factor() const { return final_div_factor_; }
  std::optional<std::pair<double, double>> momentum() const { return momentum_; }

 private:
  double max_lr_;
  std::int64_t total_steps_;
  double pct_start_ = 0.25, div_factor_ = 25, final_div_factor_ = 1e4;
  std::optional<std::pair<double, double>> momentum_ = std::make_pair(0.85, 0.95);
};

/// One-cycle (Smith & Topin 2017), in PyTorch's cosine form: from
/// max/div_factor up to max over the first pct_start of the steps, then down
/// to max/(div_factor*final_div_factor) at the last step. Like PyTorch's
/// OneCycleLR it also cycles momentum the other way, from max_momentum down
/// to base_momentum while the rate rises and back while it falls
/// (fixed_momentum() leaves it alone): high momentum with a high rate is what
/// makes the peak unstable.
class OneCycleLR : public PerStepSchedule {
 public:
  explicit OneCycleLR(const OneCycleLROptions& o)
      : max_(o.max_lr()), total_(o.total_steps()), pct_start_(o.pct_start()), initial_(max_ / o.div_factor()),
        final_(max_ / o.div_factor() / o.final_div_factor()), momentum_(o.momentum()) {
    detail::require_option(total_ >= 2, "OneCycleLR", "total_steps", ">= 2", total_);
    detail::require_option(pct_start_ > 0 && pct_start_ < 1, "OneCycleLR", "pct_start", "in (0, 1)", pct_start_);
    detail::require_option(o.div_factor() > 0, "OneCycleLR", "div_factor", "> 0", o.div_factor());
    detail::require_option(o.final_div_factor() > 0, "OneCycleLR", "final_div_factor", "> 0", o.final_div_factor());
  }
  std::string describe() const override {
    return detail::concat("one-cycle(max ", max_, ", ", total_, " steps, warm-up ", pct_start_, ")");
  }
  double learning_rate() const override {
    const double pct = progress();
    return warming_up() ? detail::cosine_anneal(initial_, max_, pct) : detail::cosine_anneal(max_, final_, pct);
  }
  std::optional<double> momentum() const override {
    if (!momentum_) return std::nullopt;
    const auto [low, high] = *momentum_;
    const double pct = progress();
    return warming_up() ? detail::cosine_anneal(high, low, pct) : detail::cosine_anneal(low, high, pct);
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
  double pct_start_, initial_, final_;
  std::optional<std::pair<double, double>> momentum_;
};

struct LinearLROptions {
  LinearLROptions(double max_lr, std::int64_t total_steps) : max_lr_(max_lr), total_steps_(total_steps) {}
  /// The share of the steps spent rising to max_lr.
  LinearLROptions& pct_start(double v) { pct_start_ = v; return *this; }
  /// The rate at the first step, as a share of max_lr ...
  LinearLROptions& start_factor(double v) { start_factor_ = v; return *this; }
  /// ... and after the last one.
  LinearLROptions& end_factor(double v) { end_factor_ = v; return *this; }
  double max_lr() const { return max_lr_; }
  std::int64_t total_steps() const { return total_steps_; }
  double pct_start() const { return pct_start_; }
  double start_factor() const { return start_factor_; }
  double end_factor() const { return end_factor_; }

 private:
  double max_lr_;
  std::int64_t total_steps_;
  double pct_start_ = 0.23, start_factor_ = 0.2, end_factor_ = 0;
};

/// A triangle: the rate rises in a straight line from start_factor max_lr at step 0 to max_lr at
/// pct_start of the steps, then falls in a straight line to end_factor max_lr at total_steps (the
/// CIFAR-10 speed records' schedule: a short warm-up, and the whole rest of the run to decay).
class LinearLR : public PerStepSchedule {
 public:
  explicit LinearLR(const LinearLROptions& o)
      : max_(o.max_lr()), total_(o.total_steps()), pct_start_(o.pct_start()), start_(o.start_factor()), end_(o.end_factor()) {
    detail::require_option(total_ >= 1, "LinearLR", "total_steps", ">= 1", total_);
    detail::require_option(pct_start_ >= 0 && pct_start_ < 1, "LinearLR", "pct_start", "in [0, 1)", pct_start_);
    detail::require_option(start_ >= 0 && start_ <= 1, "LinearLR", "start_factor", "in [0, 1]", start_);
    detail::require_option(end_ >= 0 && end_ <= 1, "LinearLR", "end_factor", "in [0, 1]", end_);
  }
  std::string describe() const override {
    return detail::concat("linear(", start_ * max_, " -> ", max_, " over ", pct_start_, ", -> ", end_ * max_, " at ", total_, " steps)");
  }
  double learning_rate() const override {
    const double t = static_cast<double>(std::min(step_, total_)), total = static_cast<double>(total_);
    const double peak = pct_start_ * total;
    if (t < peak) return max_ * (start_ + (1 - start_) * t / peak);
    return max_ * (1 + (end_ - 1) * (t - peak) / (total - peak));
  }

 private:
  double max_;
  std::int64_t total_;
  double pct_start_, start_, end_;
};

}  // namespace convnet
