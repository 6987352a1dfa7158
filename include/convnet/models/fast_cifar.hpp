// The fast CIFAR network: the fastest way we know to a good CIFAR-10 classifier on a CPU, after the
// public speed records' design (airbench, Jordan 2024; hlb-CIFAR10; Page's ResNet-9). It is not
// AlexNet - `make train` stays the paper's network - but it is what a user who wants the best
// network a CPU trains in minutes should pick (`convnet train --recipe fast`, docs/fast.md).
//
//   whiten   Conv2d(3 -> 24, 2 x 2, no bias), frozen, from the data (models/patch_whitening.hpp), GELU
//   block 1  Conv2d(24 -> 64, 3 x 3, pad 1) -> MaxPool2d(2) -> BatchNorm -> GELU
//            Conv2d(64 -> 64) -> BatchNorm -> GELU                        32 -> 31 -> 15
//   block 2  the same, 64 -> 256, 256 -> 256                               15 -> 7
//   block 3  the same, 256 -> 256, 256 -> 256                              7 -> 3
//   head     MaxPool2d(3) -> Flatten -> Dense(256 -> 10, no bias) -> Multiply(1/9)
//
// Convolutions have no bias (the batch normalisation after them has one), pooling comes before the
// normalisation (4 times fewer values to normalise), the batch normalisations learn their bias
// alone (gamma held at 1: BatchNormOptions::weight(false)). Weights start as PyTorch's default,
// and the first in_channels filters of each block convolution as the identity (a Dirac kernel):
// each block starts close to passing its input through, which trains faster than noise.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "../errors.hpp"
#include "../layers/batch_norm.hpp"
#include "../layers/conv2d.hpp"
#include "../layers/dense.hpp"
#include "../layers/flatten.hpp"
#include "../layers/gelu.hpp"
#include "../layers/max_pool2d.hpp"
#include "../layers/multiply.hpp"
#include "../random.hpp"
#include "patch_whitening.hpp"
#include "sequential.hpp"

namespace convnet {

struct FastCifarOptions {
  /// Output widths of the three blocks.
  FastCifarOptions& widths(std::array<Index, 3> v) { widths_ = v; return *this; }
  FastCifarOptions& classes(Index v) { classes_ = v; return *this; }
  FastCifarOptions& input_channels(Index v) { input_channels_ = v; return *this; }
  /// The batch normalisations' momentum (PyTorch's convention: the weight of the batch).
  FastCifarOptions& batch_norm_momentum(double v) { batch_norm_momentum_ = v; return *this; }
  FastCifarOptions& batch_norm_eps(double v) { batch_norm_eps_ = v; return *this; }
  /// The constant the logits are multiplied by.
  FastCifarOptions& logit_scale(double v) { logit_scale_ = v; return *this; }
  /// Whether each block convolution's first in_channels filters start as the identity.
  FastCifarOptions& identity_init(bool v) { identity_init_ = v; return *this; }

  const std::array<Index, 3>& widths() const { return widths_; }
  Index classes() const { return classes_; }
  Index input_channels() const { return input_channels_; }
  double batch_norm_momentum() const { return batch_norm_momentum_; }
  double batch_norm_eps() const { return batch_norm_eps_; }
  double logit_scale() const { return logit_scale_; }
  bool identity_init() const { return identity_init_; }
  /// The whitening layer's filters: 2 C k k with k = 2.
  Index whitening_width() const { return 2 * input_channels_ * kWhiteningKernel * kWhiteningKernel; }

  static constexpr Index kWhiteningKernel = 2;
  static constexpr Index kInputSize = 32;

 private:
  std::array<Index, 3> widths_{{64, 256, 256}};
  Index classes_ = 10, input_channels_ = 3;
  double batch_norm_momentum_ = 0.4, batch_norm_eps_ = 1e-5, logit_scale_ = 1.0 / 9;
  bool identity_init_ = true;
};

namespace detail {
/// Filters 0 .. in_channels - 1 of `conv` (odd kernel, one group, out >= in) as the identity.
template <class T>
void dirac_init(Conv2d<T>& conv) {
  const Conv2dOptions& o = conv.options();
  const Index k = o.kernel_size(), in = o.in_channels();
  auto w = conv.weight();  // [out, in k k]
  for (Index f = 0; f < std::min(in, o.out_channels()); ++f) {
    w.row(f).setZero();
    w(f, (f * k + k / 2) * k + k / 2) = T(1);
  }
}
}  // namespace detail

/// The network, its weights drawn from `seed`; the whitening layer ("whiten", frozen) is left for
/// init_fast_cifar_whitening, which needs the training pictures.
template <class T>
Sequential<T> make_fast_cifar(const FastCifarOptions& o = {}, std::uint64_t seed = 0) {
  detail::require_option(o.classes() >= 1 && o.classes() <= 100000, "FastCifar", "classes", "in [1, 100000]", o.classes());
  detail::require_option(o.input_channels() == 1 || o.input_channels() == 3, "FastCifar", "input_channels", "1 or 3", o.input_channels());
  for (Index w : o.widths()) detail::require_option(w >= 1 && w <= 4096, "FastCifar", "widths", "in [1, 4096]", w);
  Rng seeds(seed);
  Sequential<T> net;
  const Index whiten = o.whitening_width();
  net.template add<Conv2d<T>>("whiten", Conv2dOptions(o.input_channels(), whiten, FastCifarOptions::kWhiteningKernel)
                                            .bias(false).seed(seeds()));
  net.template add<GELU<T>>("gelu0");
  Index channels = whiten;
  int n = 0;
  for (int block = 0; block < 3; ++block) {
    const Index out = o.widths()[static_cast<std::size_t>(block)];
    for (int half = 0; half < 2; ++half) {
      const std::string id = std::to_string(++n);
      auto& conv = net.template add<Conv2d<T>>("conv" + id, Conv2dOptions(channels, out, 3).padding(1).bias(false).seed(seeds()));
      if (o.identity_init()) detail::dirac_init(conv);
      if (half == 0) net.template add<MaxPool2d<T>>("pool" + std::to_string(block + 1), MaxPool2dOptions(2));
      net.template add<BatchNorm2d<T>>("bn" + id, BatchNormOptions(out).weight(false)
                                                       .momentum(o.batch_norm_momentum()).eps(o.batch_norm_eps()));
      net.template add<GELU<T>>("gelu" + id);
      channels = out;
    }
  }
  net.template add<MaxPool2d<T>>("pool4", MaxPool2dOptions(3));
  net.template add<Flatten<T>>("flatten");
  net.template add<Dense<T>>("fc", DenseOptions(channels, o.classes()).bias(false).seed(seeds()));
  net.template add<Multiply<T>>("scale", o.logit_scale());
  net.freeze({"whiten"});
  return net;
}

/// Sets the whitening layer of a fast CIFAR network from a sample of the training pictures
/// [N, C, 32, 32], normalised as training normalises them (a few thousand are plenty: 5,000
/// pictures hold 4.6 million 2 x 2 patches).
template <class T, class P>
void init_fast_cifar_whitening(Sequential<T>& net, const Tensor<P>& pictures, const PatchWhiteningOptions& options = {}) {
  auto* conv = dynamic_cast<Conv2d<T>*>(&net.layer("whiten"));
  if (conv == nullptr) throw ArgumentError("init_fast_cifar_whitening: the network's 'whiten' layer is not a Conv2d");
  init_patch_whitening(*conv, pictures, options);
}

}  // namespace convnet
