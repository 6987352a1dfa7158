// CIFAR-10 made ready for training: the parts and a held-out validation set,
// and the transforms of the recipe.
//
//   const Cifar10Data data(dir, seed, 0.1);             // train / validation / test
//   const Cifar10Pipelines pipes(data, 32, "crop,flip");  // train and evaluation transforms
//   DataLoader loader(data.train, pipes.train, LoaderOptions().batch_size(128));
//
// Augmentation names: crop (random crops of the picture padded by 1/8 of its
// side, 4 pixels at 32), flip (horizontal, p = 0.5), pca (the paper's colour
// augmentation, §4.1, from the training set's RGB covariance), none. Every
// pipeline ends with per-channel normalisation by the training set's mean and
// standard deviation; a network that reads a size other than 32 gets the
// pictures resized to it first (bilinear). Any other dataset: training_data.hpp.
#pragma once

#include <cstdint>
#include <sstream>
#include <string>

#include "cifar10.hpp"
#include "dataset.hpp"
#include "preparation.hpp"
#include "transforms.hpp"

namespace convnet {

/// The two parts of CIFAR-10 and a stratified split of the training part.
/// Not copyable: the subsets refer to train_all.
struct Cifar10Data {
  Cifar10Data(const std::string& dir, std::uint64_t seed, double validation_fraction)
      : train_all(dir, Cifar10Part::Train), test(dir, Cifar10Part::Test),
        split(stratified_split(train_all, validation_fraction, seed)), train(train_all, split.train),
        validation(train_all, split.validation.empty() ? split.train : split.validation) {}
  Cifar10Data(const Cifar10Data&) = delete;
  Cifar10Data& operator=(const Cifar10Data&) = delete;

  const Cifar10Dataset train_all, test;
  const Split split;
  const SubsetDataset train, validation;  ///< validation is the training part when the fraction is 0
};

/// The recipe's transforms for training and for evaluation (the small pipeline of preparation.hpp),
/// with the statistics they normalise by.
struct Cifar10Pipelines {
  Cifar10Pipelines(const Cifar10Data& data, Index input_size, const std::string& augmentation)
      : preparation(Preparation::compute(data.train, PreparationOptions().input_size(input_size).augment(augmentation))),
        stats(preparation.channel_stats()), train(preparation.train_pipeline()), eval(preparation.eval_pipeline()) {}

  Preparation preparation;
  ChannelStats stats;
  Pipeline train, eval;
};

}  // namespace convnet
