// Adam (Kingma & Ba 2015):
//   g' = grad + weight_decay * w                 (L2, unless decoupled)
//   m <- beta1 m + (1 - beta1) g';  v <- beta2 v + (1 - beta2) g'^2
//   w <- w - lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
// With decoupled weight decay (AdamW, Loshchilov & Hutter 2019) the decay is
// taken out of the moments: w <- w - lr * weight_decay * w, then the step.
// The study's CIFAR-10 run used lr 5e-5.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "optimizer.hpp"

namespace convnet {

struct AdamOptions {
  explicit AdamOptions(double lr = 1e-3) : lr_(lr) {}

  AdamOptions& lr(double v) { lr_ = v; return *this; }
  AdamOptions& beta1(double v) { beta1_ = v; return *this; }
  AdamOptions& beta2(double v) { beta2_ = v; return *this; }
  AdamOptions& eps(double v) { eps_ = v; return *this; }
  AdamOptions& weight_decay(double v) { weight_decay_ = v; return *this; }
  AdamOptions& decoupled(bool v) { decoupled_ = v; return *this; }
  AdamOptions& decay_biases(bool v) { decay_biases_ = v; return *this; }

  double lr() const { return lr_; }
  double beta1() const { return beta1_; }
  double beta2() const { return beta2_; }
  double eps() const { return eps_; }
  double weight_decay() const { return weight_decay_; }
  bool decoupled() const { return decoupled_; }
  bool decay_biases() const { return decay_biases_; }

 private:
  double lr_, beta1_ = 0.9, beta2_ = 0.999, eps_ = 1e-8, weight_decay_ = 0;
  bool decoupled_ = false, decay_biases_ = false;
};

template <class T>
class Adam : public Optimizer<T> {
 public:
  Adam(std::vector<Parameter<T>> parameters, const AdamOptions& options = AdamOptions())
      : Optimizer<T>(std::move(parameters), options.lr(), options.weight_decay(), options.decay_biases()),
        options_(options) {
    detail::require_option(options_.beta1() >= 0 && options_.beta1() < 1, "Adam", "beta1", "in [0, 1)", options_.beta1());
    detail::require_option(options_.beta2() >= 0 && options_.beta2() < 1, "Adam", "beta2", "in [0, 1)", options_.beta2());
    detail::require_option(options_.eps() > 0, "Adam", "eps", "> 0", options_.eps());
    for (const auto& p : this->parameters_) {
      m_.push_back(Vector<T>::Zero(p.size));
      v_.push_back(Vector<T>::Zero(p.size));
    }
  }

  std::string type_name() const override { return "adam"; }
  std::string describe() const override { return options_.decoupled() ? "AdamW" : "Adam"; }
  const AdamOptions& options() const { return options_; }

  void set_momentum(double beta1) override {
    detail::require_option(beta1 >= 0 && beta1 < 1, "Adam", "beta1", "in [0, 1)", beta1);
    options_.beta1(beta1);
  }

  void step() override {
    ++this->steps_;
    const double t = static_cast<double>(this->steps_);
    const T b1 = static_cast<T>(options_.beta1()), b2 = static_cast<T>(options_.beta2()), eps = static_cast<T>(options_.eps());
    const T correction1 = static_cast<T>(1.0 - std::pow(options_.beta1(), t));
    const T correction2 = static_cast<T>(1.0 - std::pow(options_.beta2(), t));
    for (std::size_t i = 0; i < this->parameters_.size(); ++i) {
      const Parameter<T>& p = this->parameters_[i];
      const T lr = static_cast<T>(this->learning_rate_ * this->lr_scale_[i]);
      const T wd = static_cast<T>(this->decay_[i]);
      auto w = p.values().array();
      auto g = p.grads().array();
      auto m = m_[i].array();
      auto v = v_[i].array();
      if (options_.decoupled()) {
        w -= lr * wd * w;
        m = b1 * m + (T(1) - b1) * g;
        v = b2 * v + (T(1) - b2) * g.square();
      } else {
        m = b1 * m + (T(1) - b1) * (g + wd * w);
        v = b2 * v + (T(1) - b2) * (g + wd * w).square();
      }
      w -= lr * (m / correction1) / ((v / correction2).sqrt() + eps);
    }
  }

  std::vector<StateBuffer<T>> state() override {
    std::vector<StateBuffer<T>> s;
    for (std::size_t i = 0; i < m_.size(); ++i) {
      s.push_back({"m/" + this->parameters_[i].name, m_[i].data(), m_[i].size()});
      s.push_back({"v/" + this->parameters_[i].name, v_[i].data(), v_[i].size()});
    }
    return s;
  }

 private:
  AdamOptions options_;
  std::vector<Vector<T>> m_, v_;
};

}  // namespace convnet
