// Patch whitening: a first convolution whose filters decorrelate the pixels of every k x k patch,
// computed from the training pictures rather than learned (Coates and Ng 2011; the CIFAR-10 speed
// records freeze such a layer, which saves the network from learning it in its first epochs).
//
// From the patches x (every k x k window, stride 1, of the sample pictures; d = C k k values each)
// the second moment S = E[x x^T] (the pictures are normalised, so their mean is near 0) has the
// eigen-decomposition S = V diag(lambda) V^T. Filter i is v_i / sqrt(lambda_i + eps), largest
// eigenvalue first: on those patches its outputs are uncorrelated, each with variance
// lambda_i / (lambda_i + eps); eps keeps the noise directions (tiny lambda) from being amplified
// without bound. With `negated` (the default), the d filters are followed by their negatives, so a
// GELU or ReLU after the layer loses neither half of a direction: 2 d filters in all.
//
//   Tensor<float> sample = ...;                          // [N, C, H, W], as training normalises them
//   init_patch_whitening(conv, sample, PatchWhiteningOptions().eps(5e-4));
#pragma once

#include <Eigen/Eigenvalues>
#include <cmath>
#include <string>

#include "../errors.hpp"
#include "../layers/conv2d.hpp"
#include "../tensor.hpp"

namespace convnet {

struct PatchWhiteningOptions {
  /// Added to every eigenvalue before its square root (in the units of the pictures' variance).
  PatchWhiteningOptions& eps(double v) { eps_ = v; return *this; }
  /// Whether the filters are followed by their negatives (2 C k k filters) or not (C k k).
  PatchWhiteningOptions& negated(bool v) { negated_ = v; return *this; }
  double eps() const { return eps_; }
  bool negated() const { return negated_; }

 private:
  double eps_ = 5e-4;
  bool negated_ = true;
};

/// The second moment E[x x^T] of every k x k patch (stride 1) of `pictures` [N, C, H, W], in double,
/// the patch's values in the order of a convolution weight's row: channel, then row, then column.
template <class T>
Eigen::MatrixXd patch_second_moment(const Tensor<T>& pictures, Index k) {
  const Shape s = shape_of(pictures);
  if (k < 1 || s.n < 1 || s.h < k || s.w < k) {
    throw ShapeError("patch_second_moment (pictures)", detail::concat("[N >= 1, C, H >= ", k, ", W >= ", k, "]"), s.str());
  }
  const Index d = s.c * k * k, per_picture = (s.h - k + 1) * (s.w - k + 1);
  Eigen::MatrixXd moment = Eigen::MatrixXd::Zero(d, d);
  Eigen::MatrixXd patches(d, per_picture);  // one picture's patches, a column each
  for (Index n = 0; n < s.n; ++n) {
    for (Index c = 0; c < s.c; ++c) {
      const T* plane = pictures.data() + (n * s.c + c) * s.h * s.w;
      for (Index dy = 0; dy < k; ++dy) {
        for (Index dx = 0; dx < k; ++dx) {
          const Index row = (c * k + dy) * k + dx;
          Index column = 0;
          for (Index y = 0; y + k <= s.h; ++y) {
            for (Index x = 0; x + k <= s.w; ++x) patches(row, column++) = static_cast<double>(plane[(y + dy) * s.w + x + dx]);
          }
        }
      }
    }
    moment.selfadjointView<Eigen::Lower>().rankUpdate(patches);
  }
  moment = moment.selfadjointView<Eigen::Lower>();
  return moment / static_cast<double>(s.n * per_picture);
}

/// The whitening filters of `pictures`' k x k patches: [d or 2d, C k k] as rows (a convolution's
/// weight matrix), largest eigenvalue first.
template <class T>
Eigen::MatrixXd patch_whitening_filters(const Tensor<T>& pictures, Index k, const PatchWhiteningOptions& options = {}) {
  detail::require_option(options.eps() > 0 && std::isfinite(options.eps()), "patch whitening", "eps", "finite and > 0", options.eps());
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(patch_second_moment(pictures, k));
  if (solver.info() != Eigen::Success) throw ArgumentError("patch whitening: the eigen-decomposition did not converge");
  const Index d = solver.eigenvalues().size();
  Eigen::MatrixXd filters(options.negated() ? 2 * d : d, d);
  for (Index i = 0; i < d; ++i) {
    const Index j = d - 1 - i;  // Eigen orders eigenvalues ascending
    const double lambda = std::max(solver.eigenvalues()[j], 0.0);  // rounding can leave -1e-17
    filters.row(i) = solver.eigenvectors().col(j).transpose() / std::sqrt(lambda + options.eps());
    if (options.negated()) filters.row(d + i) = -filters.row(i);
  }
  return filters;
}

/// Sets `conv`'s weights to the whitening filters of `pictures` (and its bias, if any, to 0). The
/// convolution must read the pictures' channels with one group and have as many filters as the
/// options give (2 C k k negated, C k k not).
template <class T, class P>
void init_patch_whitening(Conv2d<T>& conv, const Tensor<P>& pictures, const PatchWhiteningOptions& options = {}) {
  const Conv2dOptions& o = conv.options();
  const Index k = o.kernel_size(), d = o.in_channels() * k * k, filters = options.negated() ? 2 * d : d;
  if (o.groups() != 1 || o.out_channels() != filters || shape_of(pictures).c != o.in_channels()) {
    throw ArgumentError(detail::concat("init_patch_whitening: ", conv.name(), " (", conv.describe(), ") needs one group, ",
                                       shape_of(pictures).c, " input channels (the pictures') and ", filters,
                                       " filters (", options.negated() ? "2 C k k" : "C k k", ")"));
  }
  conv.weight() = patch_whitening_filters(pictures, k, options).template cast<T>();
  if (o.bias()) conv.bias().setZero();
}

}  // namespace convnet
