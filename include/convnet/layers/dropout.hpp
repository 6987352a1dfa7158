// Dropout (paper §4.2): in training, each unit is zeroed with probability p
// and the survivors are scaled by 1 / (1 - p) ("inverted" dropout), so
// evaluation is the identity and needs no rescaling. In evaluation mode the
// layer passes values and gradients through unchanged.
//
// The mask of element i in the t-th training forward is decided by
// counter_uniform(seed, t, i): it does not depend on the thread count or on how
// the work is split, and a checkpoint restores it with two integers. In
// data-parallel training each process holds a slice of the batch, and i counts
// from the slice's place in the whole batch (set_batch_offset), so the masks
// are those of one process training the whole batch.
#pragma once

#include <memory>
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "../errors.hpp"
#include "../key_values.hpp"
#include "../layer.hpp"
#include "../random.hpp"
#include "../threading.hpp"

namespace convnet {

struct DropoutOptions {
  explicit DropoutOptions(double p = 0.5) : p_(p) {}

  DropoutOptions& p(double v) { p_ = v; return *this; }
  DropoutOptions& seed(std::uint64_t v) { seed_ = v; return *this; }

  double p() const { return p_; }
  std::uint64_t seed() const { return seed_; }

 private:
  double p_;
  std::uint64_t seed_ = 0;
};

template <class T>
class Dropout : public Layer<T> {
 public:
  explicit Dropout(const DropoutOptions& options = DropoutOptions()) : options_(options), seed_(options.seed()) {
    detail::require_option(options_.p() >= 0.0 && options_.p() < 1.0, "Dropout", "p", "in [0, 1)", options_.p());
  }

  const DropoutOptions& options() const { return options_; }
  std::string type_name() const override { return "Dropout"; }
  static std::unique_ptr<Dropout> from_settings(KeyValues& s) {
    return std::make_unique<Dropout>(DropoutOptions().p(s.take<double>("p")));
  }
  LayerSettings settings() const override { return {{"p", detail::setting_value(options_.p())}}; }
  std::string describe() const override { return detail::concat("Dropout(p ", options_.p(), ")"); }
  Shape output_shape(const Shape& in) const override {
    if (in.size() == 0) this->input_error("[N >= 1, C >= 1, H >= 1, W >= 1]", in);
    return in;
  }

  /// The random stream: seed and the number of training forwards drawn so far.
  std::uint64_t seed() const { return seed_; }
  std::uint64_t step() const { return step_; }
  void set_random_state(std::uint64_t seed, std::uint64_t step) {
    seed_ = seed;
    step_ = step;
  }
  std::vector<std::uint64_t> random_state() const override { return {seed_, step_}; }
  void set_batch_offset(Index first_example) override { first_example_ = first_example; }
  void set_random_state(const std::vector<std::uint64_t>& state) override {
    if (state.size() != 2) {
      throw ArgumentError(detail::concat(this->name(), ": random state needs 2 values (seed, step), got ",
                                                 state.size()));
    }
    set_random_state(state[0], state[1]);
  }

 protected:
  void forward_impl(const Tensor<T>& input, Tensor<T>& output) override {
    masked_ = this->training() && options_.p() > 0.0;
    if (!masked_) {
      output = input;
      return;
    }
    resize(mask_, shape_of(input));
    const T keep_scale = T(1) / static_cast<T>(1.0 - options_.p());
    const double p = options_.p();
    const std::uint64_t seed = seed_, step = step_++;
    const Index total = input.size(), chunk = 4096;
    const std::uint64_t first = static_cast<std::uint64_t>(first_example_ * (total / input.dimension(0)));
    detail::parallel_for((total + chunk - 1) / chunk, true, [&](Index block, int) {
      const Index end = std::min(total, (block + 1) * chunk);
      for (Index i = block * chunk; i < end; ++i) {
        const T m = counter_uniform(seed, step, first + static_cast<std::uint64_t>(i)) >= p ? keep_scale : T(0);
        mask_.data()[i] = m;
        output.data()[i] = input.data()[i] * m;
      }
    });
  }

  void backward_impl(const Tensor<T>& /*input*/, const Tensor<T>& grad_output, Tensor<T>& grad_input) override {
    if (!masked_) {
      grad_input = grad_output;
      return;
    }
    flat(grad_input) = flat(grad_output).cwiseProduct(flat(mask_));
  }

 private:
  DropoutOptions options_;
  std::uint64_t seed_, step_ = 0;
  Index first_example_ = 0;
  bool masked_ = false;
  Tensor<T> mask_;  // 0 or 1/(1-p) per element, from the last training forward
};

}  // namespace convnet
