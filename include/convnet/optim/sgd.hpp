// SGD with momentum and weight decay, in the paper's form (§5):
//   v <- momentum * v - lr * (grad + weight_decay * w)
//   w <- w + v
// The learning rate sits inside the velocity (as in the paper and Caffe; PyTorch
// applies it outside, which differs only when the rate changes). With Nesterov
// momentum the step looks ahead along the new velocity (Sutskever et al. 2013):
//   w <- w + momentum * v - lr * (grad + weight_decay * w)
// Paper defaults: lr 0.01, momentum 0.9, weight decay 5e-4.
#pragma once

#include <string>
#include <vector>

#include "optimizer.hpp"

namespace convnet {

struct SgdOptions {
  explicit SgdOptions(double lr = 0.01) : lr_(lr) {}

  SgdOptions& lr(double v) { lr_ = v; return *this; }
  SgdOptions& momentum(double v) { momentum_ = v; return *this; }
  SgdOptions& weight_decay(double v) { weight_decay_ = v; return *this; }
  SgdOptions& nesterov(bool v) { nesterov_ = v; return *this; }
  SgdOptions& decay_biases(bool v) { decay_biases_ = v; return *this; }

  double lr() const { return lr_; }
  double momentum() const { return momentum_; }
  double weight_decay() const { return weight_decay_; }
  bool nesterov() const { return nesterov_; }
  bool decay_biases() const { return decay_biases_; }

 private:
  double lr_, momentum_ = 0.9, weight_decay_ = 5e-4;
  bool nesterov_ = false, decay_biases_ = false;
};

template <class T>
class Sgd : public Optimizer<T> {
 public:
  Sgd(std::vector<Parameter<T>> parameters, const SgdOptions& options = SgdOptions())
      : Optimizer<T>(std::move(parameters), options.lr(), options.weight_decay(), options.decay_biases()),
        options_(options) {
    detail::require_option(options_.momentum() >= 0 && options_.momentum() < 1, "Sgd", "momentum", "in [0, 1)",
                           options_.momentum());
    for (const auto& p : this->parameters_) velocity_.push_back(Vector<T>::Zero(p.size));
  }

  std::string type_name() const override { return "sgd"; }
  std::string describe() const override { return options_.nesterov() ? "Sgd(nesterov)" : "Sgd"; }
  const SgdOptions& options() const { return options_; }

  void set_momentum(double momentum) override {
    detail::require_option(momentum >= 0 && momentum < 1, "Sgd", "momentum", "in [0, 1)", momentum);
    options_.momentum(momentum);
  }

  void step() override {
    const T mu = static_cast<T>(options_.momentum());
    for (std::size_t i = 0; i < this->parameters_.size(); ++i) {
      const Parameter<T>& p = this->parameters_[i];
      const T lr = static_cast<T>(this->learning_rate_ * this->lr_scale_[i]);
      const T wd = static_cast<T>(this->decay_[i]);
      auto w = p.values().array();
      auto g = p.grads().array();
      auto v = velocity_[i].array();
      if (options_.nesterov()) {
        v = mu * v - lr * (g + wd * w);
        w += mu * v - lr * (g + wd * w);
      } else {
        v = mu * v - lr * (g + wd * w);
        w += v;
      }
    }
    ++this->steps_;
  }

  std::vector<StateBuffer<T>> state() override {
    std::vector<StateBuffer<T>> s;
    for (std::size_t i = 0; i < velocity_.size(); ++i) {
      s.push_back({"velocity/" + this->parameters_[i].name, velocity_[i].data(), velocity_[i].size()});
    }
    return s;
  }

 private:
  SgdOptions options_;
  std::vector<Vector<T>> velocity_;
};

}  // namespace convnet
