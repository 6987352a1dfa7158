// The pipeline of data/: transforms (crops, flips, resizing, normalisation, PCA colour, ten crops)
// and the statistics they use, the preparations that make training pipelines and evaluation views,
// and the loader (workers, shards, classes kept together, resuming, unreadable pictures) - on
// pictures generated in memory.
#include <gtest/gtest.h>

#include <convnet/checkpoint/format.hpp>
#include <convnet/data/dataset.hpp>
#include <convnet/data/image.hpp>
#include <convnet/data/loader.hpp>
#include <convnet/data/preparation.hpp>
#include <convnet/data/transforms.hpp>
#include <convnet/random.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <system_error>
#include <utility>
#include <vector>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "data_helpers.hpp"
#include "processes.hpp"

namespace {

using namespace convnet;

using convnet::testing::GeneratedDataset;

// An image whose pixel (c, y, x) holds 100c + 10y + x: every value tells where it came from.
Image coded(Index c, Index h, Index w) {
  Image image(c, h, w);
  for (Index k = 0; k < c; ++k)
    for (Index y = 0; y < h; ++y)
      for (Index x = 0; x < w; ++x) image.at(k, y, x) = static_cast<float>(100 * k + 10 * y + x);
  return image;
}

// ---- transforms -------------------------------------------------------------------

TEST(Transforms, FlipIsAnExactMirror) {
  Image image = coded(3, 4, 5);
  flip_horizontal(image);
  for (Index c = 0; c < 3; ++c)
    for (Index y = 0; y < 4; ++y)
      for (Index x = 0; x < 5; ++x) EXPECT_EQ(image.at(c, y, x), 100 * c + 10 * y + (4 - x));
  Rng rng(1);
  Image always = coded(1, 2, 3), never = coded(1, 2, 3);
  RandomHorizontalFlip(1.0).apply(always, rng);
  RandomHorizontalFlip(0.0).apply(never, rng);
  EXPECT_EQ(always.at(0, 1, 0), 12);
  EXPECT_EQ(never.at(0, 1, 0), 10);
}

TEST(Transforms, CropsLandAtTheirOffsets) {
  Rng rng(1);
  Image centre = coded(2, 6, 8);
  CenterCrop(2, 4).apply(centre, rng);
  ASSERT_EQ(centre.shape_str(), "2x2x4");
  EXPECT_EQ(centre.at(0, 0, 0), 10 * 2 + 2);  // offset ((6-2)/2, (8-4)/2) = (2, 2)
  EXPECT_EQ(centre.at(1, 1, 3), 100 + 10 * 3 + 5);

  // Random crops with padding: the crop's top-left value tells its offset, which must cover the whole range.
  std::set<std::pair<int, int>> offsets;
  for (int i = 0; i < 400; ++i) {
    Image image(1, 4, 4, 0.0f);
    for (Index y = 0; y < 4; ++y)
      for (Index x = 0; x < 4; ++x) image.at(0, y, x) = static_cast<float>(1 + 10 * y + x);
    RandomCrop(4, 4, 2).apply(image, rng);
    // Any real pixel (y, x) of the crop holds 1 + 10 (y + top) + (x + left); padding holds 0.
    int top = -99, left = -99;
    for (Index y = 0; y < 4 && top == -99; ++y) {
      for (Index x = 0; x < 4; ++x) {
        const float v = image.at(0, y, x);
        if (v == 0.0f) continue;
        const int t = static_cast<int>(v) - 1 - static_cast<int>(10 * y + x);  // 10 top + left, left in [-2, 2]
        top = static_cast<int>(std::lround(t / 10.0));
        left = t - 10 * top;
        break;
      }
    }
    offsets.insert({top, left});
    EXPECT_GE(top, -2);
    EXPECT_LE(top, 2);
  }
  EXPECT_EQ(offsets.size(), 25u);  // every offset in [-2, 2]^2 appears
  Image small = coded(1, 3, 3);
  EXPECT_THROW(RandomCrop(8, 8, 2).apply(small, rng), ShapeError);
}

TEST(Transforms, ResizeBilinear) {
  Rng rng(1);
  Image constant(3, 5, 7, 42.0f);
  Resize::exact(11, 3).apply(constant, rng);
  ASSERT_EQ(constant.shape_str(), "3x11x3");
  for (float v : constant.pixels) EXPECT_FLOAT_EQ(v, 42.0f);

  // Doubling a 1 x 2 image [0, 4]: pixel centres map to -0.25, 0.25, 0.75, 1.25 -> 0, 1, 3, 4.
  Image ramp(1, 1, 2);
  ramp.pixels = {0.0f, 4.0f};
  Resize::exact(1, 4).apply(ramp, rng);
  EXPECT_EQ(ramp.pixels, (std::vector<float>{0, 1, 3, 4}));

  Image wide(3, 20, 40, 1.0f);
  Resize::shorter_side(10).apply(wide, rng);
  EXPECT_EQ(wide.shape_str(), "3x10x20");
}

TEST(Transforms, NormalizeAndMeanImage) {
  Rng rng(1);
  Image image(2, 1, 2);
  image.pixels = {1, 3, 10, 20};
  Normalize(ChannelStats{{2, 10}, {1, 5}}).apply(image, rng);
  EXPECT_EQ(image.pixels, (std::vector<float>{-1, 1, 0, 2}));
  EXPECT_THROW(Normalize(ChannelStats{{1}, {0}}), std::invalid_argument);
  Image wrong(3, 1, 1);
  EXPECT_THROW(SubtractMeanImage(Image(3, 2, 2)).apply(wrong, rng), ShapeError);
}

TEST(Transforms, ResizeRefusesOutputsOverItsLimit) {
  Rng rng(1);
  Image wide(3, 2, 300);
  EXPECT_THROW(Resize::shorter_side(64).max_output_pixels(10000).apply(wide, rng), DataError);  // 64 x 9600
  Resize::shorter_side(4).max_output_pixels(10000).apply(wide, rng);                             // 4 x 600
  EXPECT_EQ(wide.shape_str(), Image(3, 4, 600).shape_str());
  EXPECT_THROW(Resize::exact(5000, 5000), std::invalid_argument);
}

TEST(Statistics, MeanImageOfAConstantSetIsThatConstant) {
  GeneratedDataset constant(5, [](Index, Image& out) { out.reset(3, 4, 4, 7.5f); });
  const Image mean = compute_mean_image(constant);
  EXPECT_EQ(mean.shape_str(), "3x4x4");
  for (float v : mean.pixels) EXPECT_FLOAT_EQ(v, 7.5f);
  const ChannelStats stats = compute_channel_stats(constant);
  EXPECT_DOUBLE_EQ(stats.mean[1], 7.5);
  EXPECT_DOUBLE_EQ(stats.stddev[1], 0.0);
  GeneratedDataset mixed(2, [](Index i, Image& out) { out.reset(3, 4 + i, 4, 1.0f); });
  EXPECT_THROW(compute_mean_image(mixed), ShapeError);
}

TEST(Statistics, ChannelStatsByHand) {
  // Channel 0 takes values 0 and 10 equally often: mean 5, standard deviation 5.
  GeneratedDataset two(2, [](Index i, Image& out) { out.reset(1, 2, 2, i == 0 ? 0.0f : 10.0f); });
  const ChannelStats stats = compute_channel_stats(two);
  EXPECT_DOUBLE_EQ(stats.mean[0], 5.0);
  EXPECT_DOUBLE_EQ(stats.stddev[0], 5.0);
}

TEST(PcaColor, GreyPicturesVaryAlongTheGreyAxisOnly) {
  // Grey pictures (R = G = B, varying): the covariance has one direction, (1, 1, 1) / sqrt(3).
  GeneratedDataset grey(50, [](Index i, Image& out) { out.reset(3, 2, 2, static_cast<float>(i * 3 % 50)); });
  const RgbPca pca = compute_rgb_pca(grey);
  const Eigen::Vector3d axis = Eigen::Vector3d::Ones().normalized();
  EXPECT_NEAR(std::abs(pca.vectors.col(0).dot(axis)), 1.0, 1e-9);
  EXPECT_GT(pca.values[0], 100.0);
  EXPECT_NEAR(pca.values[1], 0.0, 1e-6);
  EXPECT_NEAR(pca.values[2], 0.0, 1e-6);
  // So every offset lies on that axis.
  PcaColorAugmentation augment(pca);
  Rng rng(3);
  for (int i = 0; i < 20; ++i) {
    const Eigen::Vector3d d = augment.offset(rng);
    EXPECT_LT((d - d.dot(axis) * axis).norm(), 1e-6 * std::max(1.0, d.norm()));
  }
}

TEST(PcaColor, SpreadMatchesPointOneTimesLambdaOrItsRoot) {
  RgbPca pca;
  pca.vectors = Eigen::Matrix3d::Identity();
  pca.values = Eigen::Vector3d(400.0, 25.0, 4.0);
  for (PcaScale scale : {PcaScale::Eigenvalue, PcaScale::SqrtEigenvalue}) {
    PcaColorAugmentation augment(pca, 0.1, scale);
    Rng rng(5);
    const int draws = 20000;
    Eigen::Vector3d sum = Eigen::Vector3d::Zero(), sum_sq = Eigen::Vector3d::Zero();
    for (int i = 0; i < draws; ++i) {
      const Eigen::Vector3d d = augment.offset(rng);
      sum += d;
      sum_sq += d.cwiseProduct(d);
    }
    for (int k = 0; k < 3; ++k) {
      const double expected = 0.1 * (scale == PcaScale::Eigenvalue ? pca.values[k] : std::sqrt(pca.values[k]));
      const double sd = std::sqrt(sum_sq[k] / draws - (sum[k] / draws) * (sum[k] / draws));
      EXPECT_NEAR(sd, expected, 0.03 * expected) << "component " << k;
    }
  }
  // One offset per picture: every pixel moves by the same RGB vector.
  PcaColorAugmentation augment(pca);
  Image image(3, 3, 3, 100.0f);
  Rng rng(9);
  augment.apply(image, rng);
  for (Index c = 0; c < 3; ++c)
    for (Index i = 1; i < 9; ++i) EXPECT_EQ(image.plane(c)[i], image.plane(c)[0]);
}

TEST(TenCrop, CornersCentreAndMirrors) {
  const Image image = coded(1, 5, 6);
  const auto crops = ten_crops(image, 3, 4);
  ASSERT_EQ(crops.size(), 10u);
  EXPECT_EQ(crops[0].at(0, 0, 0), 0);         // top-left
  EXPECT_EQ(crops[1].at(0, 0, 0), 2);         // top-right: column 6 - 4
  EXPECT_EQ(crops[2].at(0, 0, 0), 20);        // bottom-left: row 5 - 3
  EXPECT_EQ(crops[3].at(0, 0, 0), 22);        // bottom-right
  EXPECT_EQ(crops[4].at(0, 0, 0), 11);        // centre: (1, 1)
  for (int i = 0; i < 5; ++i) EXPECT_EQ(crops[5 + i].at(0, 1, 0), crops[i].at(0, 1, 3));  // mirrors
}

// ---- preparation: training pipelines and the views evaluation sees --------------------

TEST(Preparation, ToChannelsReplicatesGreyAndTakesLuma) {
  Rng rng(0);
  Image grey(1, 2, 2, 0.0f);
  grey.pixels = {1, 2, 3, 4};
  ToChannels(3).apply(grey, rng);
  EXPECT_EQ(grey.shape_str(), "3x2x2");
  EXPECT_EQ(grey.at(2, 1, 1), 4);
  EXPECT_EQ(grey.at(1, 0, 1), 2);
  ToChannels(1).apply(grey, rng);
  EXPECT_EQ(grey.shape_str(), "1x2x2");
  EXPECT_NEAR(grey.at(0, 1, 0), 3, 1e-5);  // luma weights sum to 1
  Image two(2, 1, 1);
  EXPECT_THROW(ToChannels(3).apply(two, rng), ShapeError);
}

// A picture whose value tells its position: 1 + y * 16 + x (one channel), statistics that leave it be.
Preparation identity_small(Index input, const std::string& augment, Index channels = 1) {
  return Preparation::with_statistics(PreparationOptions().input_size(input).channels(channels).augment(augment),
                                      ChannelStats{std::vector<double>(channels, 0.0), std::vector<double>(channels, 1.0)});
}

TEST(Preparation, SmallTenCropsAreCropsOfThePaddedPictureTrainingDrew) {
  const Preparation prep = identity_small(8, "crop,flip");  // padding 8 / 8 = 1
  Image picture(1, 8, 8);
  for (Index y = 0; y < 8; ++y)
    for (Index x = 0; x < 8; ++x) picture.at(0, y, x) = static_cast<float>(1 + y * 16 + x);
  const std::vector<Image> views = prep.views(picture, EvalViews::TenCrop);
  ASSERT_EQ(views.size(), 10u);
  for (const Image& v : views) EXPECT_EQ(v.shape_str(), "1x8x8");
  EXPECT_EQ(views[0].at(0, 0, 0), 0);           // top-left crop starts in the padding
  EXPECT_EQ(views[0].at(0, 1, 1), 1);           // then the picture's (0, 0)
  EXPECT_EQ(views[3].at(0, 6, 6), 1 + 7 * 16 + 7);  // bottom-right ends at its (7, 7)
  EXPECT_EQ(views[3].at(0, 7, 7), 0);
  EXPECT_EQ(views[4].pixels, picture.pixels);   // the centre of the padded picture is the picture
  Image mirror = views[0];
  flip_horizontal(mirror);
  EXPECT_EQ(views[5].pixels, mirror.pixels);
  // Every ten-crop view is a crop training could have drawn: RandomCrop with the same padding.
  std::set<std::vector<float>> drawn;
  const Pipeline train = prep.train_pipeline();
  for (std::uint64_t s = 0; s < 2000; ++s) {
    Rng rng(s);
    Image p = picture;
    train.apply(p, rng);
    drawn.insert(p.pixels);
  }
  for (const Image& v : views) EXPECT_TRUE(drawn.count(v.pixels)) << "a view training never drew";
  // Centre and flip views.
  EXPECT_EQ(prep.views(picture, EvalViews::Centre).size(), 1u);
  const auto flip = prep.views(picture, EvalViews::Flip);
  ASSERT_EQ(flip.size(), 2u);
  mirror = picture;
  flip_horizontal(mirror);
  EXPECT_EQ(flip[1].pixels, mirror.pixels);
  // Flip and translate: the picture moved a pixel up-left and down-right (zero filled), then the
  // mirrors of the three.
  const auto shifted = prep.views(picture, EvalViews::FlipTranslate);
  ASSERT_EQ(shifted.size(), 6u);
  EXPECT_EQ(shifted[0].pixels, picture.pixels);
  EXPECT_EQ(shifted[1].at(0, 0, 0), picture.at(0, 1, 1));
  EXPECT_EQ(shifted[1].at(0, 7, 7), 0);
  EXPECT_EQ(shifted[2].at(0, 1, 1), picture.at(0, 0, 0));
  EXPECT_EQ(shifted[2].at(0, 0, 5), 0);
  for (std::size_t i = 0; i < 3; ++i) {
    Image m = shifted[i];
    flip_horizontal(m);
    EXPECT_EQ(shifted[i + 3].pixels, m.pixels) << "view " << i + 3;
  }
  for (const Image& v : shifted) EXPECT_TRUE(drawn.count(v.pixels)) << "a shifted view training never drew";
  EXPECT_EQ(parse_eval_views("flip-translate"), EvalViews::FlipTranslate);
  EXPECT_EQ(view_count(EvalViews::FlipTranslate), 6u);
  // A picture of another size is fitted first: shorter side to 8, then the centre.
  EXPECT_EQ(prep.views(Image(1, 16, 20, 5.0f), EvalViews::Centre)[0].shape_str(), "1x8x8");
}

TEST(Preparation, PaperViewsAreTheTenCropsOfTheResizedCentreSquare) {
  const auto options = PreparationOptions().kind(PreparationKind::ResizeAndCrop).input_size(6).resize(8).augment("crop,flip");
  const Preparation prep = Preparation::with_statistics(options, ChannelStats{{0, 0, 0}, {1, 1, 1}});
  Image picture(3, 8, 16);  // shorter side already 8: the centre 8 x 8 is columns 4-11
  for (Index c = 0; c < 3; ++c)
    for (Index y = 0; y < 8; ++y)
      for (Index x = 0; x < 16; ++x) picture.at(c, y, x) = static_cast<float>(100 * c + 16 * y + x);
  const auto views = prep.views(picture, EvalViews::TenCrop);
  ASSERT_EQ(views.size(), 10u);
  EXPECT_EQ(views[0].shape_str(), "3x6x6");
  EXPECT_EQ(views[0].at(0, 0, 0), 4);               // top-left of the centre square
  EXPECT_EQ(views[3].at(1, 5, 5), 100 + 16 * 7 + 11);  // bottom-right
  EXPECT_EQ(views[4].at(0, 0, 0), 16 * 1 + 5);       // centre: offset (1, 1)
  const auto centre = prep.views(picture, EvalViews::Centre);
  Image eval = picture;
  Rng rng(0);
  prep.eval_pipeline().apply(eval, rng);
  EXPECT_EQ(centre[0].pixels, eval.pixels);  // validation sees the centre view
  EXPECT_EQ(centre[0].pixels, views[4].pixels);
}

TEST(Preparation, StatisticsRoundTripThroughACheckpointAndHostileEntriesAreRefused) {
  GeneratedDataset data(40, [](Index i, Image& out) {
    out.resize(3, 12, 10 + i % 3);
    for (std::size_t k = 0; k < out.pixels.size(); ++k) out.pixels[k] = static_cast<float>((k * 31 + i * 7) % 256);
  });
  const auto options = PreparationOptions().kind(PreparationKind::ResizeAndCrop).input_size(8).resize(10)
                           .augment("crop,flip,pca").mean(MeanKind::Image).statistics_sample(25).seed(2);
  const Preparation prep = Preparation::compute(data, options);
  Checkpoint c;
  prep.save(c);
  const Preparation back = Preparation::loaded(Checkpoint::parse(c.serialize()));
  EXPECT_EQ(back.str(), prep.str());
  EXPECT_EQ(back.channel_stats().stddev, prep.channel_stats().stddev);
  ASSERT_TRUE(back.pca().has_value());
  EXPECT_EQ(back.pca()->values, prep.pca()->values);
  EXPECT_EQ(back.mean_image().pixels, prep.mean_image().pixels);
  EXPECT_EQ(back.mean_image().shape_str(), "3x10x10");
  Image p;
  data.load(5, p);
  EXPECT_EQ(back.views(p, EvalViews::TenCrop)[7].pixels, prep.views(p, EvalViews::TenCrop)[7].pixels);
  // A sample of 25 of the 40 gives other statistics than all of them; the same seed the same ones.
  EXPECT_EQ(Preparation::compute(data, options).channel_stats().stddev, prep.channel_stats().stddev);
  EXPECT_NE(Preparation::compute(data, PreparationOptions(options).statistics_sample(0)).channel_stats().stddev,
            prep.channel_stats().stddev);

  auto refused = [&](const std::function<void(Checkpoint&)>& spoil) {
    Checkpoint bad = Checkpoint::parse(c.serialize());
    spoil(bad);
    try {
      Preparation::loaded(bad);
    } catch (const CheckpointError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(refused([](Checkpoint& b) { b.set_text("data/preparation", "kind=paper input=8 channels=3 resize=99999999 padding=0 augment=crop mean=image"); })
                .find("resize 99999999 is outside [1, 4096]"), std::string::npos);
  EXPECT_NE(refused([](Checkpoint& b) { b.set_text("data/preparation", "kind=fancy input=8 channels=3 resize=10 padding=0 augment=crop mean=image"); })
                .find("kind 'fancy'"), std::string::npos);
  EXPECT_NE(refused([](Checkpoint& b) { b.set_text("data/preparation", "kind=small input=8 channels=3 resize=10 padding=0 augment=crop mean=image"); })
                .find("mean picture belongs to the paper pipeline"), std::string::npos);
  EXPECT_NE(refused([](Checkpoint& b) { b.set_text("data/preparation", "kind=paper input=8 channels=3 resize=12 padding=0 augment=crop,pca mean=image"); })
                .find("data/mean_image must be 3x12x12"), std::string::npos);
  EXPECT_NE(refused([](Checkpoint& b) { b.set_f64s("data/pca", {1, 2}); }).find("12 data/pca values"), std::string::npos);
  EXPECT_NE(refused([](Checkpoint& b) { b.set_f64s("data/std", {1, 0, 1}); }).find("deviations positive"), std::string::npos);
  EXPECT_NE(refused([](Checkpoint& b) { b.set_f64s("data/mean", {1, 2}); }).find("3 values each"), std::string::npos);
}

// ---- loader -------------------------------------------------------------------------

std::vector<std::vector<float>> one_epoch(const Dataset& data, const Pipeline& pipeline, int workers,
                                          std::uint64_t epoch, std::vector<int>* labels = nullptr) {
  DataLoader loader(data, pipeline, LoaderOptions().batch_size(7).workers(workers).prefetch(3).seed(11));
  loader.start_epoch(epoch);
  std::vector<std::vector<float>> batches;
  while (const Batch* b = loader.next()) {
    batches.emplace_back(b->images.data(), b->images.data() + b->images.size());
    if (labels) labels->insert(labels->end(), b->labels.begin(), b->labels.end());
  }
  return batches;
}

// `n` pictures 3 x 6 x 6 whose pixel k of picture i is i * 1000 + k.
GeneratedDataset numbered_pictures(Index n) {
  return GeneratedDataset(n, [](Index i, Image& out) {
    out.resize(3, 6, 6);
    for (std::size_t k = 0; k < out.pixels.size(); ++k) out.pixels[k] = static_cast<float>(i * 1000 + k);
  });
}

Pipeline crop_and_flip() {
  Pipeline pipeline;
  pipeline.add<RandomCrop>(4, 4, 1).add<RandomHorizontalFlip>();
  return pipeline;
}

TEST(Loader, SameBatchesForAnyNumberOfWorkers) {
  GeneratedDataset data = numbered_pictures(40);
  const Pipeline pipeline = crop_and_flip();
  std::vector<int> labels;
  const auto serial = one_epoch(data, pipeline, 0, 3, &labels);
  ASSERT_EQ(serial.size(), 6u);  // 40 / 7 rounded up
  EXPECT_EQ(serial.back().size(), 5u * 3 * 4 * 4);
  EXPECT_EQ(one_epoch(data, pipeline, 1, 3), serial);
  EXPECT_EQ(one_epoch(data, pipeline, 3, 3), serial);
  EXPECT_NE(one_epoch(data, pipeline, 2, 4), serial);  // another epoch, another order and augmentation
  // Every example appears once per epoch.
  std::vector<int> counts(3, 0);
  for (int l : labels) ++counts[static_cast<std::size_t>(l)];
  EXPECT_EQ(counts, (std::vector<int>{14, 13, 13}));
}

TEST(Loader, AlternatingFlipsShowEachPictureTheOtherWayEveryEpochForAnyWorkers) {
  // Pictures whose every pixel says which picture and where it is: a batch tells whether each was
  // mirrored. Epoch by epoch each picture flips; in the first epoch about half are.
  const Index n = 200;
  GeneratedDataset data(n, [](Index i, Image& out) {
    out.resize(1, 4, 4);
    for (Index y = 0; y < 4; ++y)
      for (Index x = 0; x < 4; ++x) out.at(0, y, x) = static_cast<float>(i * 10 + x);
  });
  const Preparation prep = Preparation::with_statistics(
      PreparationOptions().input_size(4).channels(1).augment("alternating-flip").padding(0),
      ChannelStats{{0.0}, {1.0}});
  EXPECT_NE(prep.train_pipeline().describe().find("alternating flip"), std::string::npos) << prep.train_pipeline().describe();
  auto mirrored_in = [&](std::uint64_t epoch, int workers) {
    DataLoader loader(data, prep.train_pipeline(), LoaderOptions().batch_size(32).workers(workers).seed(5));
    loader.start_epoch(epoch);
    std::vector<int> mirrored(static_cast<std::size_t>(n), -1);
    for (Index b = 0; b < loader.batches_per_epoch(); ++b) {
      const Batch& batch = *loader.next();
      for (Index k = 0; k < batch.count(); ++k) {
        const Index i = batch.indices[static_cast<std::size_t>(k)];
        const float* row = batch.images.data() + k * 16;
        mirrored[static_cast<std::size_t>(i)] = row[0] == static_cast<float>(i * 10 + 3) ? 1 : row[0] == static_cast<float>(i * 10) ? 0 : 2;
      }
    }
    return mirrored;
  };
  const auto first = mirrored_in(0, 1);
  const Index flipped = std::count(first.begin(), first.end(), 1);
  EXPECT_EQ(std::count(first.begin(), first.end(), -1) + std::count(first.begin(), first.end(), 2), 0);
  EXPECT_GT(flipped, n / 2 - 30);  // binomial(200, 1/2): 100 +- 7 for one standard deviation
  EXPECT_LT(flipped, n / 2 + 30);
  for (std::uint64_t epoch = 1; epoch < 4; ++epoch) {
    const auto now = mirrored_in(epoch, epoch == 2 ? 0 : 2), before = mirrored_in(epoch - 1, 1);
    for (Index i = 0; i < n; ++i) {
      ASSERT_EQ(now[static_cast<std::size_t>(i)], 1 - before[static_cast<std::size_t>(i)]) << "picture " << i << ", epoch " << epoch;
    }
  }
  // Another seed draws another first epoch.
  EXPECT_NE(AlternatingFlip::flipped({5, 0, 7}) + 2 * AlternatingFlip::flipped({5, 0, 8}) + 4 * AlternatingFlip::flipped({5, 0, 9}) +
                8 * AlternatingFlip::flipped({5, 0, 10}),
            AlternatingFlip::flipped({6, 0, 7}) + 2 * AlternatingFlip::flipped({6, 0, 8}) + 4 * AlternatingFlip::flipped({6, 0, 9}) +
                8 * AlternatingFlip::flipped({6, 0, 10}));
  EXPECT_THROW(Preparation::with_statistics(PreparationOptions().augment("alternate"), ChannelStats{{0, 0, 0}, {1, 1, 1}}),
               std::invalid_argument);
}

TEST(Loader, ShardsTogetherAreTheWholeBatch) {
  // 40 pictures in batches of 7 (the last has 5) split three ways (its slices: 1, 2, 2), and in
  // batches of 19 (the last has 2: one slice is empty).
  GeneratedDataset data = numbered_pictures(40);
  const Pipeline pipeline = crop_and_flip();
  for (Index size : {Index{7}, Index{19}}) {
    const LoaderOptions options = LoaderOptions().batch_size(size).workers(1).seed(11);
    DataLoader whole(data, pipeline, options);
    std::vector<std::unique_ptr<DataLoader>> shards;
    for (int r = 0; r < 3; ++r) {
      shards.push_back(std::make_unique<DataLoader>(data, pipeline, options));
      shards.back()->set_shard(r, 3);
    }
    whole.start_epoch(2);
    for (auto& shard : shards) shard->start_epoch(2);
    Index batches = 0;
    while (const Batch* w = whole.next()) {
      ++batches;
      std::vector<float> pixels;
      std::vector<int> labels;
      Index offset = 0;
      for (auto& shard : shards) {
        const Batch* s = shard->next();
        ASSERT_NE(s, nullptr);
        EXPECT_EQ(s->offset, offset) << "batch " << batches;
        EXPECT_EQ(s->global_count, w->count());
        EXPECT_LE(std::abs(s->count() - w->count() / 3), 1) << "slices differ by at most one";
        offset += s->count();
        pixels.insert(pixels.end(), s->images.data(), s->images.data() + (s->count() ? s->images.size() : 0));
        labels.insert(labels.end(), s->labels.begin(), s->labels.end());
      }
      EXPECT_EQ(labels, w->labels) << "batch " << batches;
      EXPECT_EQ(pixels, std::vector<float>(w->images.data(), w->images.data() + w->images.size()));
    }
    EXPECT_EQ(batches, whole.batches_per_epoch());
    for (auto& shard : shards) EXPECT_EQ(shard->next(), nullptr);
  }
  DataLoader loader(data, pipeline);
  EXPECT_THROW(loader.set_shard(3, 3), std::invalid_argument);
  EXPECT_THROW(loader.set_shard(0, 0), std::invalid_argument);
}

TEST(Loader, KeepsPicturesOfAClassTogetherForPairLosses) {
  // 40 pictures of 5 classes (8 each), runs of 4: every batch of 8 is two runs, so each class in it has 4 or 8.
  GeneratedDataset data(40, [](Index i, Image& out) { out = Image(1, 2, 2, static_cast<float>(i)); }, 5);
  DataLoader loader(data, Pipeline(), LoaderOptions().batch_size(8).per_class(4).workers(1).seed(5));
  std::vector<int> first_epoch;
  for (std::uint64_t epoch : {0u, 1u}) {
    loader.start_epoch(epoch);
    std::vector<int> seen(40, 0);
    std::vector<int> labels;
    while (const Batch* b = loader.next()) {
      std::vector<int> counts(5, 0);
      for (Index k = 0; k < b->count(); ++k) {
        ++counts[static_cast<std::size_t>(b->labels[static_cast<std::size_t>(k)])];
        ++seen[static_cast<std::size_t>(b->images.data()[k * 4])];
        labels.push_back(b->labels[static_cast<std::size_t>(k)]);
      }
      for (int c : counts) EXPECT_TRUE(c == 0 || c == 4 || c == 8) << "a class with " << c << " pictures in a batch";
    }
    EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), 40) << "every picture once an epoch";
    if (epoch == 0) {
      first_epoch = labels;
    } else {
      EXPECT_NE(labels, first_epoch) << "another epoch, another order";
    }
  }
  EXPECT_THROW(DataLoader(data, Pipeline(), LoaderOptions().batch_size(8).per_class(9)), std::invalid_argument);
}

TEST(Loader, ResumesMidEpochAndReportsErrors) {
  GeneratedDataset data(20, [](Index i, Image& out) { out.reset(1, 2, 2, static_cast<float>(i)); });
  DataLoader loader(data, Pipeline(), LoaderOptions().batch_size(4).workers(2).seed(1));
  loader.start_epoch(5);
  std::vector<float> full;
  while (const Batch* b = loader.next()) full.insert(full.end(), b->images.data(), b->images.data() + b->images.size());
  loader.start_epoch(5, 3);
  std::vector<float> tail;
  while (const Batch* b = loader.next()) tail.insert(tail.end(), b->images.data(), b->images.data() + b->images.size());
  EXPECT_EQ(tail, std::vector<float>(full.begin() + 12 * 4, full.end()));

  GeneratedDataset uneven(6, [](Index i, Image& out) { out.reset(1, 2 + (i == 4), 2, 0.0f); });
  DataLoader bad(uneven, Pipeline(), LoaderOptions().batch_size(6).workers(1).shuffle(false));
  bad.start_epoch(0);
  EXPECT_THROW(bad.next(), DataError);
  DataLoader unstarted(data, Pipeline(), LoaderOptions().workers(0));
  EXPECT_THROW(unstarted.next(), std::logic_error);
}

// Restarting an epoch, and destroying the loader, while workers are filling batches: no batch of
// the old epoch leaks into the new one, and nothing is left running (ThreadSanitizer runs this).
TEST(Loader, RestartedOrDestroyedWhileBatchesAreBeingFilled) {
  GeneratedDataset data(64, [](Index i, Image& out) { out.reset(1, 3, 3, static_cast<float>(i)); });
  auto epoch_of = [&](std::uint64_t epoch) {
    DataLoader fresh(data, Pipeline(), LoaderOptions().batch_size(4).workers(0).seed(5));
    fresh.start_epoch(epoch);
    std::vector<float> all;
    while (const Batch* b = fresh.next()) all.insert(all.end(), b->images.data(), b->images.data() + b->images.size());
    return all;
  };
  const std::vector<float> expected = epoch_of(2);
  for (int round = 0; round < 20; ++round) {
    DataLoader loader(data, Pipeline(), LoaderOptions().batch_size(4).workers(3).prefetch(4).seed(5));
    loader.start_epoch(1);
    for (int k = 0; k < round % 4; ++k) loader.next();  // workers are filling the batches after these
    loader.start_epoch(2);
    std::vector<float> all;
    while (const Batch* b = loader.next()) all.insert(all.end(), b->images.data(), b->images.data() + b->images.size());
    EXPECT_EQ(all, expected) << "round " << round;
    loader.start_epoch(3);
    if (round % 2) loader.next();
  }  // destroyed with an epoch under way
}

// A worker thread that cannot start (no memory for its stack) is reported as std::system_error, after
// the threads that did start are joined; it used to end the program (std::terminate).
TEST(Loader, ThreadsThatStartedAreJoinedWhenALaterOneCannotStart) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "an address-space limit and a sanitizer's shadow memory do not mix";
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
  GTEST_SKIP() << "an address-space limit and a sanitizer's shadow memory do not mix";
#endif
#endif
  GeneratedDataset data(8, [](Index i, Image& out) { out.reset(1, 2, 2, static_cast<float>(i)); });
  convnet::testing::ChildProcess child([&](int fd) {
    long pages = 0;
    std::ifstream("/proc/self/statm") >> pages;
    const rlim_t limit = static_cast<rlim_t>(pages) * static_cast<rlim_t>(::sysconf(_SC_PAGESIZE)) + (24u << 20);
    const rlimit cap{limit, limit};
    ::setrlimit(RLIMIT_AS, &cap);  // room for a few 8 MB thread stacks, not for 64
    try {
      DataLoader loader(data, Pipeline(), LoaderOptions().workers(64));
      ::write(fd, "started all", 11);
    } catch (const std::system_error&) {
      ::write(fd, "refused", 7);
    }
  });
  const std::string said = child.read_rest();
  const int status = child.wait();
  EXPECT_EQ(said, "refused");
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// The same failure through the test hook, so that it runs under the sanitizer builds too (where the
// test above is skipped): the fourth of eight threads cannot start; the three that did are joined
// (a std::thread destroyed unjoined would end the program) and the error reaches the caller.
TEST(Loader, AThreadThatCannotStartIsReportedAfterTheOthersAreJoinedUnderAnyBuild) {
  GeneratedDataset data(8, [](Index i, Image& out) { out.reset(1, 2, 2, static_cast<float>(i)); });
  int started = 0;
  detail::loader_thread_start_hook() = [&](int worker) {
    if (worker == 3) throw std::system_error(EAGAIN, std::generic_category(), "no thread for worker 3");
    ++started;
  };
  try {
    DataLoader loader(data, Pipeline(), LoaderOptions().workers(8));
    ADD_FAILURE() << "all eight started";
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find("no thread for worker 3"), std::string::npos);
  }
  detail::loader_thread_start_hook() = nullptr;
  EXPECT_EQ(started, 3);
  DataLoader loader(data, Pipeline(), LoaderOptions().workers(8).batch_size(8));
  loader.start_epoch(0);
  ASSERT_NE(loader.next(), nullptr);
}

// ---- the loader skips what it cannot read ------------------------------------------

TEST(Loader, UnreadablePicturesAreSkippedCountedAndReplacedAlikeForAnyWorkers) {
  GeneratedDataset data(10, [](Index i, Image& out) {
    if (i == 3 || i == 4) throw DataError("picture " + std::to_string(i) + " is corrupt");
    out.reset(1, 1, 1, static_cast<float>(i));
  });
  std::vector<std::vector<float>> seen;
  for (int workers : {0, 2}) {
    DataLoader loader(data, Pipeline(), LoaderOptions().batch_size(4).workers(workers).seed(5).skip_unreadable(true));
    std::vector<float> values;
    for (std::uint64_t epoch = 0; epoch < 2; ++epoch) {
      loader.start_epoch(epoch);
      while (const Batch* b = loader.next()) {
        EXPECT_EQ(b->count(), std::min<Index>(4, 10 - static_cast<Index>(values.size() % 10)));
        for (Index k = 0; k < b->count(); ++k) {
          values.push_back(b->images.data()[k]);
          EXPECT_EQ(static_cast<Index>(b->images.data()[k]), b->indices[static_cast<std::size_t>(k)]);
          EXPECT_EQ(b->labels[static_cast<std::size_t>(k)], b->indices[static_cast<std::size_t>(k)] % 3);
        }
      }
    }
    EXPECT_EQ(values.size(), 20u);  // every batch full
    for (float v : values) EXPECT_TRUE(v != 3 && v != 4);
    EXPECT_EQ(loader.skipped(), 4);  // two a epoch
    EXPECT_NE(loader.first_skip_reason().find("is corrupt"), std::string::npos);
    seen.push_back(values);
  }
  EXPECT_EQ(seen[0], seen[1]);  // the same replacement whichever thread meets the bad picture
  DataLoader strict(data, Pipeline(), LoaderOptions().batch_size(10).workers(1).shuffle(false));
  strict.start_epoch(0);
  EXPECT_THROW(strict.next(), DataError);
  // A folder of unreadable files fails at once: after 1,000 in a row, not after walking all of it.
  GeneratedDataset broken(5000, [](Index, Image&) { throw DataError("unreadable"); });
  DataLoader walker(broken, Pipeline(), LoaderOptions().batch_size(1).workers(0).skip_unreadable(true));
  walker.start_epoch(0);
  EXPECT_THROW(walker.next(), DataError);
  EXPECT_EQ(walker.skipped(), 999);
}

// A picture that decodes but that a transform refuses (issue 40, item 6: a 1 x 40 strip whose
// shorter side scaled to 8 would pass the resize's pixel limit) is skipped and counted like an
// unreadable one, the same way for any number of workers; without skipping it ends the epoch.
TEST(Loader, PicturesATransformRefusesAreSkippedAndCountedToo) {
  GeneratedDataset data(8, [](Index i, Image& out) {
    if (i == 2) {
      out.reset(1, 1, 40, 0.0f);
    } else {
      out.reset(1, 2, 2, static_cast<float>(i));
    }
  });
  Pipeline pipeline;
  pipeline.add<Resize>(Resize::shorter_side(8).max_output_pixels(100)).add<CenterCrop>(2, 2);
  std::vector<std::vector<float>> seen;
  for (int workers : {0, 2}) {
    DataLoader loader(data, pipeline, LoaderOptions().batch_size(4).workers(workers).seed(3).skip_unreadable(true));
    loader.start_epoch(0);
    std::vector<float> values;
    while (const Batch* b = loader.next()) {
      for (Index k = 0; k < b->count(); ++k) {
        EXPECT_NE(b->indices[static_cast<std::size_t>(k)], 2);
        values.push_back(b->images.data()[k * 4]);
      }
    }
    EXPECT_EQ(values.size(), 8u);
    EXPECT_EQ(loader.skipped(), 1);
    EXPECT_NE(loader.first_skip_reason().find("Resize::max_output_pixels"), std::string::npos)
        << loader.first_skip_reason();
    seen.push_back(values);
  }
  EXPECT_EQ(seen[0], seen[1]);
  DataLoader strict(data, pipeline, LoaderOptions().batch_size(8).workers(0).shuffle(false));
  strict.start_epoch(0);
  EXPECT_THROW(strict.next(), DataError);
}

}  // namespace
