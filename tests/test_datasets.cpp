// The study's other datasets (CIFAR-100, MNIST and Fashion-MNIST as IDX, plain and gzip), image folders
// with their own validation part, the pipelines that prepare pictures for training and evaluation, and
// the loader's skipping of unreadable pictures - all on files the tests write in the published formats.
#include <gtest/gtest.h>

#include <convnet/data/image_io.hpp>  // first: it compiles stb
#include <convnet/models/alexnet.hpp>
#include <convnet/data/cifar100.hpp>
#include <convnet/data/idx.hpp>
#include <convnet/data/loader.hpp>
#include <convnet/data/preparation.hpp>
#include <convnet/data/training_data.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "data_helpers.hpp"
#include "helpers.hpp"

namespace {

using namespace convnet;
using namespace convnet::testing;
namespace fs = std::filesystem;


std::vector<std::uint8_t> bytes_of(const std::string& s) { return std::vector<std::uint8_t>(s.begin(), s.end()); }


// ---- CIFAR-100 --------------------------------------------------------------------

TEST(Cifar100, ReadsFineAndCoarseLabelsAndThePictureInChwOrder) {
  TempDir dir;
  write_cifar100(dir / "c100", 30);
  const Cifar100Dataset fine(dir / "c100", Cifar100Part::Train);
  const Cifar100Dataset coarse(dir / "c100", Cifar100Part::Train, Cifar100Labels::Coarse);
  ASSERT_EQ(fine.size(), 30);
  EXPECT_EQ(fine.classes(), 100);
  EXPECT_EQ(coarse.classes(), 20);
  EXPECT_EQ(fine.class_names()[99], "fine99");
  EXPECT_EQ(coarse.class_names()[19], "coarse19");
  for (Index r = 0; r < 30; ++r) {
    EXPECT_EQ(fine.label(r), (3 * r + 1) % 100);
    EXPECT_EQ(coarse.label(r), r % 20);
  }
  Image image;
  fine.load(7, image);
  EXPECT_EQ(image.shape_str(), "3x32x32");
  EXPECT_EQ(image.at(0, 0, 0), 7);
  EXPECT_EQ(image.at(1, 0, 0), (7 + 1024) % 256);  // the green plane starts after two label bytes and 1,024 reds
  EXPECT_EQ(image.at(2, 31, 31), (7 + 3071) % 256);
  const Cifar100Dataset test(dir / "c100", Cifar100Part::Test);
  EXPECT_EQ(test.size(), 30);
  EXPECT_EQ(test.label(0), 4);  // test record 0 is r = 1
}

TEST(Cifar100, BadLabelsTruncationAndNamesNameTheFileAndRecord) {
  TempDir dir;
  write_cifar100(dir / "c", 3);
  const std::string train = dir / "c/train.bin";
  {
    std::fstream f(train, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(3074 + 1);  // record 1's fine label
    f.put(static_cast<char>(100));
  }
  // Both labels are checked whichever the dataset gives.
  for (auto kind : {Cifar100Labels::Fine, Cifar100Labels::Coarse}) {
    const std::string what = data_error([&] { Cifar100Dataset(dir / "c", Cifar100Part::Train, kind); });
    EXPECT_NE(what.find("CIFAR-100 file " + train + ", record 1 (byte 3075): fine label 100 is outside 0-99"),
              std::string::npos) << what;
  }
  write_cifar100(dir / "c", 3);
  {
    std::fstream f(train, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(2 * 3074);  // record 2's coarse label
    f.put(static_cast<char>(20));
  }
  std::string what = data_error([&] { Cifar100Dataset(dir / "c", Cifar100Part::Train); });
  EXPECT_NE(what.find("record 2 (byte 6148): coarse label 20 is outside 0-19"), std::string::npos) << what;

  write_cifar100(dir / "c", 3);
  fs::resize_file(train, 3074 * 3 - 1);
  what = data_error([&] { Cifar100Dataset(dir / "c", Cifar100Part::Train); });
  EXPECT_NE(what.find(train + " has 9221 bytes, not a positive multiple of the 3074-byte record"), std::string::npos)
      << what;
  // A CIFAR-10 file (3,073-byte records) is not taken for CIFAR-100.
  write_cifar(dir / "ten", 2);
  fs::copy_file(dir / "ten/test_batch.bin", train, fs::copy_options::overwrite_existing);
  what = data_error([&] { Cifar100Dataset(dir / "c", Cifar100Part::Train); });
  EXPECT_NE(what.find("not a positive multiple of the 3074-byte record"), std::string::npos) << what;

  write_cifar100(dir / "c", 3);
  std::ofstream(dir / "c/coarse_label_names.txt") << "only\ntwo\n";
  what = data_error([&] { Cifar100Dataset(dir / "c", Cifar100Part::Train, Cifar100Labels::Coarse); });
  EXPECT_NE(what.find("coarse_label_names.txt: expected 20 names, found 2"), std::string::npos) << what;
  EXPECT_NO_THROW(Cifar100Dataset(dir / "c", Cifar100Part::Train, Cifar100Labels::Fine));
}

// ---- IDX (MNIST, Fashion-MNIST) -----------------------------------------------------

TEST(Idx, ReadsPlainAndGzipFilesAlike) {
  if (!idx_reads_gzip()) GTEST_SKIP() << "built without zlib";
  TempDir dir;
  write_mnist(dir / "plain", 12, 5, false, 6, 4);
  write_mnist(dir / "gz", 12, 5, true, 6, 4);
  ASSERT_TRUE(fs::exists(dir / "gz/train-images-idx3-ubyte.gz"));
  ASSERT_FALSE(fs::exists(dir / "gz/train-images-idx3-ubyte"));
  const IdxDataset plain(dir / "plain", IdxPart::Train, IdxDataset::mnist_classes());
  const IdxDataset gz(dir / "gz", IdxPart::Train, IdxDataset::fashion_mnist_classes());
  ASSERT_EQ(plain.size(), 12);
  ASSERT_EQ(gz.size(), 12);
  EXPECT_EQ(plain.height(), 6);
  EXPECT_EQ(plain.width(), 4);
  EXPECT_EQ(gz.class_names()[9], "Ankle boot");
  Image a, b;
  for (Index i = 0; i < 12; ++i) {
    EXPECT_EQ(plain.label(i), i % 10);
    EXPECT_EQ(gz.label(i), plain.label(i));
    plain.load(i, a);
    gz.load(i, b);
    EXPECT_EQ(a.shape_str(), "1x6x4");
    EXPECT_EQ(a.pixels, b.pixels);
    EXPECT_EQ(a.at(0, 1, 2), (i * 7 + 6) % 256);  // row-major: pixel k = 1 * 4 + 2
  }
  EXPECT_EQ(IdxDataset(dir / "gz", IdxPart::Test, IdxDataset::mnist_classes()).size(), 5);
}

TEST(Idx, HostileAndBrokenFilesAreRefusedBeforeAllocating) {
  const auto labels = bytes_of(idx_bytes({3}, [](std::size_t i) { return i; }));
  const auto images = bytes_of(idx_bytes({3, 2, 2}, [](std::size_t i) { return i; }));
  auto error = [&](std::vector<std::uint8_t> img, std::vector<std::uint8_t> lab) {
    return data_error([&] { IdxDataset::from_memory(std::move(img), std::move(lab), IdxDataset::mnist_classes(), "img", "lab"); });
  };
  EXPECT_EQ(error(images, labels), "no DataError");
  // 2^31 pictures of 4096 x 4096 in a 16-byte file: refused by the limit, nothing allocated.
  std::string huge = idx_bytes({0, 0, 0}, [](std::size_t) { return 0; });
  huge[4] = '\x7f', huge[10] = '\x10', huge[14] = '\x10';
  EXPECT_NE(error(bytes_of(huge), labels).find("img claims 3.57473e+16 bytes of data, over the limit of 1073741824 (IdxLimits::max_bytes)"), std::string::npos)
      << error(bytes_of(huge), labels);
  auto truncated = images;
  truncated.pop_back();
  EXPECT_NE(error(truncated, labels).find("img: its header says 3 pictures of 2 x 2 (28 bytes with the header) but the "
                                          "file has 27 (truncated)"), std::string::npos) << error(truncated, labels);
  auto trailing = images;
  trailing.push_back(0);
  EXPECT_NE(error(trailing, labels).find("(trailing bytes)"), std::string::npos);
  auto wrong_type = images;
  wrong_type[2] = 0x0d;  // float
  EXPECT_NE(error(wrong_type, labels).find("IDX element type 0xd is not 0x08"), std::string::npos);
  EXPECT_NE(error(labels, labels).find("img has 1 dimensions, expected 3"), std::string::npos);
  auto not_idx = images;
  not_idx[0] = 'P';
  EXPECT_NE(error(not_idx, labels).find("img is not an IDX file"), std::string::npos);
  const auto four = bytes_of(idx_bytes({4}, [](std::size_t) { return 1; }));
  EXPECT_NE(error(images, four).find("img holds 3 pictures but lab holds 4 labels"), std::string::npos);
  const auto ten = bytes_of(idx_bytes({3}, [](std::size_t i) { return i == 2 ? 10 : 0; }));
  EXPECT_NE(error(images, ten).find("lab, label 2 (byte 10): 10 is outside 0-9"), std::string::npos)
      << error(images, ten);
  auto zero_side = images;
  zero_side[11] = 0;  // rows = 0
  EXPECT_NE(error(zero_side, labels).find("dimension 1 is 0, outside [1, 4096]"), std::string::npos);
  if (!idx_reads_gzip()) {
    EXPECT_NE(error(bytes_of(std::string("\x1f\x8b\x08\x00", 4)), labels).find("built without zlib"), std::string::npos);
    return;
  }
#if defined(CONVNET_WITH_ZLIB)
  // A gzip stream that inflates past what its header claims is cut off just past the claim, not inflated whole.
  const std::string bomb = gzip(idx_bytes({3, 2, 2}, [](std::size_t) { return 0; }) + std::string(1 << 22, '\0'));
  EXPECT_NE(error(bytes_of(bomb), labels).find("inflates to more than"), std::string::npos) << error(bytes_of(bomb), labels);
  std::string cut = gzip(std::string(images.begin(), images.end()));
  cut.resize(cut.size() - 6);
  EXPECT_NE(error(bytes_of(cut), labels).find("img is not a valid gzip stream"), std::string::npos) << error(bytes_of(cut), labels);
  EXPECT_EQ(error(bytes_of(gzip(std::string(images.begin(), images.end()))), bytes_of(gzip(std::string(labels.begin(), labels.end())))),
            "no DataError");
#endif
}

TEST(Idx, MissingFilesNameWhatWasLookedFor) {
  TempDir dir;
  write_mnist(dir / "m", 3, 2, false, 4, 4);
  fs::remove(dir / "m/t10k-labels-idx1-ubyte");
  const std::string what = data_error([&] { IdxDataset(dir / "m", IdxPart::Test, IdxDataset::mnist_classes()); });
  EXPECT_NE(what.find("IDX file " + (dir / "m/t10k-labels-idx1-ubyte") + " (or t10k-labels-idx1-ubyte.gz) not found"),
            std::string::npos) << what;
}

// ---- image folders ------------------------------------------------------------------

void picture(const std::string& path, int w, int h, std::uint8_t value) {
  fs::create_directories(fs::path(path).parent_path());
  write_png(path, w, h, std::vector<std::uint8_t>(static_cast<std::size_t>(w * h * 3), value));
}

TEST(ImageFolder, SeparateValidationFolderLabelsAsTheTrainingFolderDoes) {
  TempDir dir;
  for (const char* c : {"apple", "banana", "cherry"}) picture(dir / (std::string("train/") + c + "/a.png"), 4, 4, 10);
  picture(dir / "val/cherry/v.png", 4, 4, 20);  // only one class has validation pictures
  const ImageFolderDataset train(dir / "train");
  const ImageFolderDataset val(dir / "val", ImageFolderOptions().class_names(train.class_names()));
  EXPECT_EQ(val.classes(), 3);
  EXPECT_EQ(val.label(0), 2);  // cherry, as in train/ - not 0, its position in val/
  picture(dir / "val/durian/v.png", 4, 4, 20);
  const std::string what =
      data_error([&] { ImageFolderDataset(dir / "val", ImageFolderOptions().class_names(train.class_names())); });
  EXPECT_NE(what.find("image folder " + (dir / "val") + ": sub-folder 'durian' is not one of the 3 classes"),
            std::string::npos) << what;
}

TEST(TrainingData, OpensEveryKindWithItsPartsAndShapes) {
  TempDir dir;
  write_cifar(dir / "c10", 20);
  write_cifar100(dir / "c100", 100);
  write_mnist(dir / "mnist", 50, 10, idx_reads_gzip());
  for (const char* c : {"a", "b"}) {
    for (int i = 0; i < 10; ++i) picture(dir / (std::string("folder/") + c + "/" + std::to_string(i) + ".png"), 6, 5, 1);
  }
  const auto opts = TrainingDataOptions().validation_fraction(0.2).seed(3);
  const auto c10 = TrainingData::open(DatasetSpec::parse("cifar10:" + (dir / "c10")), opts);
  EXPECT_EQ(c10->train().size() + c10->validation().size(), 100);
  EXPECT_EQ(c10->validation().size(), 20);
  ASSERT_NE(c10->test(), nullptr);
  EXPECT_EQ(c10->test()->size(), 20);
  EXPECT_EQ(c10->picture_size(), 32);
  const auto c100 = TrainingData::open(DatasetSpec::parse("cifar100:" + (dir / "c100")),
                                       TrainingDataOptions(opts).cifar100_labels(Cifar100Labels::Coarse));
  EXPECT_EQ(c100->class_names().size(), 20u);
  EXPECT_EQ(c100->train().size(), 80);
  EXPECT_EQ(c100->validation().size(), 20);  // one of each coarse class's five
  const auto mnist = TrainingData::open(DatasetSpec::parse("mnist:" + (dir / "mnist")), opts);
  EXPECT_EQ(mnist->picture_size(), 28);
  EXPECT_EQ(mnist->picture_channels(), 1);
  EXPECT_EQ(mnist->test()->size(), 10);
  const auto folder = TrainingData::open(DatasetSpec::parse("folder:" + (dir / "folder")), opts);
  EXPECT_EQ(folder->test(), nullptr);  // no test/: the report is on validation
  EXPECT_EQ(folder->validation().size(), 4);
  EXPECT_EQ(folder->picture_size(), 0);
  // The ImageNet layout: train/ and val/ (no split).
  for (const char* c : {"a", "b"}) {
    picture(dir / (std::string("net/train/") + c + "/x.png"), 6, 5, 1);
    picture(dir / (std::string("net/val/") + c + "/y.png"), 6, 5, 1);
  }
  const auto net = TrainingData::open(DatasetSpec::parse("folder:" + (dir / "net")), opts);
  EXPECT_EQ(net->train().size(), 2);
  EXPECT_EQ(net->validation().size(), 2);
  EXPECT_NE(net->describe().find("2 training / 2 validation pictures in 2 classes"), std::string::npos) << net->describe();
  for (const char* bad : {"cifar10", "svhn:/x", "folder:", "mnist"}) EXPECT_THROW(DatasetSpec::parse(bad), std::invalid_argument);
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
  // A picture of another size is fitted first: shorter side to 8, then the centre.
  EXPECT_EQ(prep.views(Image(1, 16, 20, 5.0f), EvalViews::Centre)[0].shape_str(), "1x8x8");
}

TEST(Preparation, PaperViewsAreTheTenCropsOfTheResizedCentreSquare) {
  const auto options = PreparationOptions().kind(PreparationKind::Paper).input_size(6).resize(8).augment("crop,flip");
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
  const auto options = PreparationOptions().kind(PreparationKind::Paper).input_size(8).resize(10)
                           .augment("crop,flip,pca").mean(MeanKind::Image).statistics_sample(25).seed(2);
  const Preparation prep = Preparation::compute(data, options);
  Checkpoint c;
  prep.write(c);
  const Preparation back = Preparation::read(Checkpoint::parse(c.serialize()));
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
      Preparation::read(bad);
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

TEST(AlexNetConfig, GreyInputChannelsRoundTripAndShapeConv1) {
  const AlexNetConfig grey = AlexNetConfig::named("cifar-half").input_size(28).input_channels(1);
  EXPECT_NE(grey.str().find(" channels=1 "), std::string::npos);
  EXPECT_EQ(AlexNetConfig::parse(grey.str()).input_channels(), 1);
  // Configurations stored before the field existed read as RGB, and RGB ones are written as before.
  EXPECT_EQ(AlexNetConfig::named("cifar").str().find("channels"), std::string::npos);
  EXPECT_EQ(AlexNetConfig::parse(AlexNetConfig::named("cifar").str()).input_channels(), 3);
  const auto shapes = alexnet_parameter_shapes(grey);
  EXPECT_EQ(shapes[0].shape, (std::vector<Index>{32, 1, 5, 5}));
  auto net = make_alexnet<float>(grey);
  EXPECT_EQ(net.output_shape(Shape{2, 1, 28, 28}), (Shape{2, 10, 1, 1}));
  EXPECT_THROW(alexnet_parameter_shapes(AlexNetConfig(grey).input_channels(0)), std::invalid_argument);
  EXPECT_THROW(alexnet_parameter_shapes(AlexNetConfig(grey).input_channels(65)), std::invalid_argument);
}

}  // namespace
