// The fast CIFAR-10 recipe: what trains models/fast_cifar.hpp's network to ~93% in minutes, after
// the public speed records (airbench, Jordan 2024; hlb-CIFAR10; Page's DAWNBench ResNet-9), each
// ingredient a library piece of its own:
//
//   network      make_fast_cifar, its first layer whitened from 5,000 training pictures
//   optimizer    Nesterov SGD, momentum 0.85, the batch normalisations' biases at 64 times the rate
//   schedule     LinearLR: a fifth of the rate to all of it over the first 23% of the steps, then
//                down to 7% of it at the end
//   loss         cross-entropy with label smoothing 0.2
//   averaging    Lookahead every 5 steps with decay 0.95^5 (t / T)^3, the slow weights taken at each
//                epoch's end (TrainerOptions::lookahead)
//   pictures     random translations of up to 2 pixels (crops of the padded picture), alternating flips
//   test views   flip-translate: the picture, its mirror, and both moved a pixel two ways
//
// The rates are given per example, as the speed records give them: for our mean loss, the rate is
// lr_per_1024 / (1024 (1 + 1 / (1 - momentum))) times the batch, and the weight decay per step
// weight_decay_per_1024 batch / 1024 / (1 + 1 / (1 - momentum)), whatever the batch, so that the
// batch can change (memory) without retuning.
//
//   FastRecipe recipe;                                   // the defaults: 10 epochs of 512
//   auto net = make_fast_cifar<float>(FastCifarOptions(), seed);
//   init_whitening_from(net, train_set, prep.eval_pipeline(), recipe.whitening_pictures());
//   Sgd<float> sgd(net.trainable_parameters(), recipe.sgd_options());
//   scale_batch_norm_biases(sgd, net, recipe);
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "../data/dataset.hpp"
#include "../data/transforms.hpp"
#include "../errors.hpp"
#include "../models/fast_cifar.hpp"
#include "../optim/optimizer.hpp"
#include "../optim/schedules.hpp"
#include "../optim/sgd.hpp"
#include "../optim/weight_average.hpp"

namespace convnet {

struct FastRecipe {
  FastRecipe& epochs(long v) { epochs_ = v; return *this; }
  FastRecipe& batch_size(Index v) { batch_size_ = v; return *this; }
  /// The learning rate per 1,024 examples, decoupled from the momentum (see the header).
  FastRecipe& lr_per_1024(double v) { lr_per_1024_ = v; return *this; }
  FastRecipe& momentum(double v) { momentum_ = v; return *this; }
  /// The weight decay per 1,024 examples, decoupled from the learning rate.
  FastRecipe& weight_decay_per_1024(double v) { weight_decay_per_1024_ = v; return *this; }
  /// The batch normalisations' biases learn this many times faster (their decay is not scaled).
  FastRecipe& bias_lr_scale(double v) { bias_lr_scale_ = v; return *this; }
  FastRecipe& label_smoothing(double v) { label_smoothing_ = v; return *this; }
  /// Lookahead: every k steps, decay base^k (t / T)^power; lookahead(false): none.
  FastRecipe& lookahead(bool v) { lookahead_ = v; return *this; }
  FastRecipe& lookahead_every(std::int64_t v) { lookahead_every_ = v; return *this; }
  FastRecipe& lookahead_base(double v) { lookahead_base_ = v; return *this; }
  FastRecipe& lookahead_power(double v) { lookahead_power_ = v; return *this; }
  /// Training pictures the whitening layer is computed from (0: none: the layer keeps its random start).
  FastRecipe& whitening_pictures(Index v) { whitening_pictures_ = v; return *this; }
  /// The largest translation, in pixels (the zero padding random crops are drawn from).
  FastRecipe& translate(Index v) { translate_ = v; return *this; }
  FastRecipe& alternating_flip(bool v) { alternating_flip_ = v; return *this; }

  long epochs() const { return epochs_; }
  Index batch_size() const { return batch_size_; }
  double lr_per_1024() const { return lr_per_1024_; }
  double momentum() const { return momentum_; }
  double weight_decay_per_1024() const { return weight_decay_per_1024_; }
  double bias_lr_scale() const { return bias_lr_scale_; }
  double label_smoothing() const { return label_smoothing_; }
  bool lookahead() const { return lookahead_; }
  std::int64_t lookahead_every() const { return lookahead_every_; }
  double lookahead_base() const { return lookahead_base_; }
  double lookahead_power() const { return lookahead_power_; }
  Index whitening_pictures() const { return whitening_pictures_; }
  Index translate() const { return translate_; }
  bool alternating_flip() const { return alternating_flip_; }

  /// Nesterov momentum multiplies a constant gradient's step by this.
  double momentum_gain() const { return 1 + 1 / (1 - momentum_); }
  /// The rate of our mean loss at this batch size.
  double lr() const { return lr_per_1024_ / (1024 * momentum_gain()) * static_cast<double>(batch_size_); }
  /// The weight decay that, multiplied by lr(), shrinks the weights by the decoupled amount per step.
  double weight_decay() const {
    return weight_decay_per_1024_ * static_cast<double>(batch_size_) / (1024 * momentum_gain()) / lr();
  }
  /// "crop,alternating-flip" and the like, for PreparationOptions::augment.
  std::string augment() const {
    std::string a = translate_ > 0 ? "crop" : "";
    if (alternating_flip_) a += a.empty() ? "alternating-flip" : ",alternating-flip";
    return a.empty() ? "none" : a;
  }

  SgdOptions sgd_options() const { return SgdOptions(lr()).momentum(momentum_).nesterov(true).weight_decay(weight_decay()); }
  /// The schedule of a run of `steps` optimizer steps.
  LinearLROptions schedule(std::int64_t steps) const {
    return LinearLROptions(lr(), steps).pct_start(0.23).start_factor(0.2).end_factor(0.07);
  }
  /// The lookahead of a run of `steps` optimizer steps (for TrainerOptions::lookahead).
  WeightAverageOptions lookahead_options(std::int64_t steps) const {
    return WeightAverageOptions()
        .decay(std::pow(lookahead_base_, static_cast<double>(lookahead_every_)))
        .every(lookahead_every_)
        .ramp(steps, lookahead_power_)
        .lookahead(true);
  }

 private:
  long epochs_ = 10;
  Index batch_size_ = 512, whitening_pictures_ = 5000, translate_ = 2;
  double lr_per_1024_ = 11.5, momentum_ = 0.85, weight_decay_per_1024_ = 0.0153, bias_lr_scale_ = 64;
  double label_smoothing_ = 0.2, lookahead_base_ = 0.95, lookahead_power_ = 3;
  std::int64_t lookahead_every_ = 5;
  bool lookahead_ = true, alternating_flip_ = true;
};

/// Every batch normalisation bias of `net` learns at bias_lr_scale times the rate, with the weight
/// decay scaled down as much so that its decay per step is the weights' (the speed records' rule).
template <class T>
void scale_batch_norm_biases(Optimizer<T>& optimizer, Sequential<T>& net, const FastRecipe& recipe) {
  for (std::size_t i = 0; i < net.size(); ++i) {
    const std::string type = net[i].type_name();
    if (type != "BatchNorm2d" && type != "BatchNorm1d") continue;
    for (const auto& p : net[i].parameters()) {
      if (p.name != "bias") continue;
      optimizer.set_parameter_settings(net[i].name() + ".bias",
                                       ParameterSettings{recipe.bias_lr_scale(), recipe.weight_decay() / recipe.bias_lr_scale()});
    }
  }
}

/// Sets the whitening layer of `net` (make_fast_cifar's) from the first `count` pictures of `data`
/// through `pipeline` (evaluation's: the pictures as the network reads them, unaugmented).
template <class T>
void init_whitening_from(Sequential<T>& net, const Dataset& data, const Pipeline& pipeline, Index count,
                         const PatchWhiteningOptions& options = {}) {
  count = std::min(count, data.size());
  if (count < 1) throw ArgumentError("init_whitening_from: no pictures to compute the whitening from");
  Image picture;
  Rng unused(0);
  Tensor<float> pictures;
  for (Index i = 0; i < count; ++i) {
    data.load(i, picture);
    pipeline.apply(picture, unused);
    if (i == 0) pictures = Tensor<float>(count, picture.channels, picture.height, picture.width);
    if (picture.channels * picture.height * picture.width != shape_of(pictures).per_sample()) {
      throw DataError(detail::concat("init_whitening_from: picture ", i, " is ", picture.shape_str(), " after the pipeline, the first ",
                                     shape_of(pictures).str()));
    }
    std::copy(picture.pixels.begin(), picture.pixels.end(), pictures.data() + i * shape_of(pictures).per_sample());
  }
  init_fast_cifar_whitening(net, pictures, options);
}

}  // namespace convnet
