// The one numerical gradient checker, used for every layer and loss.
//
// For a layer f and a fixed random tensor R, the scalar L(x, theta) = sum(f(x) * R)
// has dL/df = R. backward(R) must then give dL/dx and add dL/dtheta to the
// parameter gradients; both are compared with central differences
//   (L(v + h) - L(v - h)) / 2h,  h = 1e-6,
// over every element of the input and of every parameter, in double.
// The error is ||analytic - numeric|| / max(||analytic||, ||numeric||), per tensor.
#pragma once

#include <convnet/layer.hpp>
#include <convnet/random.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

namespace convnet::testing {

struct GradientError {
  std::string tensor;  // "input" or the parameter's name
  double relative_error;
};

/// Fills t with uniform values in [lo, hi).
inline void fill_uniform(Tensor<double>& t, Rng& rng, double lo = -1.0, double hi = 1.0) {
  for (Index i = 0; i < t.size(); ++i) t.data()[i] = rng.uniform(lo, hi);
}

inline double relative_error(const std::vector<double>& a, const std::vector<double>& b) {
  double diff = 0, na = 0, nb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff += (a[i] - b[i]) * (a[i] - b[i]);
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  const double scale = std::sqrt(std::max(na, nb));
  return scale == 0 ? std::sqrt(diff) : std::sqrt(diff) / scale;
}

/// Checks `scalar_loss` (which must run a forward from the current values)
/// against `analytic` gradients for each tensor in `targets`.
inline std::vector<GradientError> compare_with_finite_differences(
    const std::function<double()>& scalar_loss, const std::vector<std::pair<std::string, double*>>& values,
    const std::vector<std::vector<double>>& analytic, const std::vector<Index>& sizes, double h = 1e-6) {
  std::vector<GradientError> errors;
  for (std::size_t t = 0; t < values.size(); ++t) {
    std::vector<double> numeric(static_cast<std::size_t>(sizes[t]));
    for (Index i = 0; i < sizes[t]; ++i) {
      double& v = values[t].second[i];
      const double saved = v;
      v = saved + h;
      const double plus = scalar_loss();
      v = saved - h;
      const double minus = scalar_loss();
      v = saved;
      numeric[static_cast<std::size_t>(i)] = (plus - minus) / (2 * h);
    }
    errors.push_back({values[t].first, relative_error(analytic[t], numeric)});
  }
  return errors;
}

/// Gradient check of one layer on a random input of `input_shape`.
/// `before_forward` runs before every forward (Dropout uses it to replay one mask).
inline std::vector<GradientError> check_layer_gradients(Layer<double>& layer, const Shape& input_shape,
                                                        std::uint64_t seed = 1,
                                                        const std::function<void()>& before_forward = {}) {
  Rng rng(seed);
  Tensor<double> input = make_tensor<double>(input_shape);
  fill_uniform(input, rng);
  for (auto& p : layer.parameters()) {
    for (Index i = 0; i < p.size; ++i) p.value[i] = rng.uniform(-1.0, 1.0);
  }
  Tensor<double> weights = make_tensor<double>(layer.output_shape(input_shape));
  fill_uniform(weights, rng);

  auto loss = [&]() {
    if (before_forward) before_forward();
    const Tensor<double>& out = layer.forward(input);
    return flat(out).dot(flat(weights));
  };

  // Analytic gradients.
  layer.zero_grad();
  loss();
  const Tensor<double>& grad_input = layer.backward(weights);
  std::vector<std::pair<std::string, double*>> values{{"input", input.data()}};
  std::vector<std::vector<double>> analytic{{grad_input.data(), grad_input.data() + grad_input.size()}};
  std::vector<Index> sizes{input.size()};
  for (auto& p : layer.parameters()) {
    values.emplace_back(p.name, p.value);
    analytic.emplace_back(p.grad, p.grad + p.size);
    sizes.push_back(p.size);
  }
  return compare_with_finite_differences(loss, values, analytic, sizes);
}

}  // namespace convnet::testing
