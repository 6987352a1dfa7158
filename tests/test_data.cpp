// Datasets, transforms and the loader, on small files the tests write themselves.
#include <gtest/gtest.h>

#include <convnet/data/image_io.hpp>  // first: it compiles stb
#include <convnet/data/cifar10.hpp>
#include <convnet/data/image_folder.hpp>
#include <convnet/data/loader.hpp>
#include <convnet/data/transforms.hpp>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <set>
#include <fstream>
#include <string>
#include <sys/resource.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <system_error>
#include <thread>
#include <unistd.h>

#include "data_helpers.hpp"
#include "helpers.hpp"
#include "processes.hpp"

namespace {

using namespace convnet;
namespace fs = std::filesystem;

using convnet::testing::TempDir;
using convnet::testing::GeneratedDataset;
using convnet::testing::data_error;

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

// ---- CIFAR-10 reader -------------------------------------------------------------

void write_cifar(const TempDir& dir, int records) { convnet::testing::write_cifar(dir.path.string(), records); }

TEST(Cifar10, ReadsRecordsInChwOrder) {
  TempDir dir;
  write_cifar(dir, 3);
  Cifar10Dataset train(dir.path.string(), Cifar10Part::Train);
  EXPECT_EQ(train.size(), 15);
  EXPECT_EQ(train.classes(), 10);
  EXPECT_EQ(train.class_names()[9], "truck");
  EXPECT_EQ(train.label(4), (2 + 1) % 10);  // file 2, record 1
  Image image;
  train.load(4, image);
  EXPECT_EQ(image.shape_str(), "3x32x32");
  EXPECT_EQ(image.at(0, 0, 0), 1);           // k = 0
  EXPECT_EQ(image.at(1, 0, 0), (1 + 1024) % 256);  // green plane starts at byte 1024
  EXPECT_EQ(image.at(2, 31, 31), (1 + 3071) % 256);
  Cifar10Dataset test(dir.path.string(), Cifar10Part::Test);
  EXPECT_EQ(test.size(), 3);
  EXPECT_EQ(test.label(2), 2);
}


TEST(Cifar10, TruncatedBadLabelAndMissingFilesNameTheFile) {
  TempDir dir;
  write_cifar(dir, 2);
  fs::resize_file(dir / "data_batch_3.bin", 3073 * 2 - 100);
  std::string what = data_error([&] { Cifar10Dataset(dir.path.string(), Cifar10Part::Train); });
  EXPECT_NE(what.find(dir / "data_batch_3.bin"), std::string::npos) << what;
  EXPECT_NE(what.find("not a positive multiple of the 3073-byte record"), std::string::npos) << what;

  write_cifar(dir, 2);
  {
    std::fstream f(dir / "test_batch.bin", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(3073);  // record 1's label
    f.put(static_cast<char>(10));
  }
  what = data_error([&] { Cifar10Dataset(dir.path.string(), Cifar10Part::Test); });
  EXPECT_NE(what.find(dir / "test_batch.bin" + ", record 1 (byte 3073): label 10 is outside 0-9"), std::string::npos)
      << what;

  fs::remove(dir / "data_batch_5.bin");
  what = data_error([&] { Cifar10Dataset(dir.path.string(), Cifar10Part::Train); });
  EXPECT_NE(what.find("cannot open CIFAR-10 file " + dir / "data_batch_5.bin"), std::string::npos) << what;

  fs::remove(dir / "batches.meta.txt");
  what = data_error([&] { Cifar10Dataset(dir.path.string(), Cifar10Part::Test); });
  EXPECT_NE(what.find(dir / "batches.meta.txt"), std::string::npos) << what;
}

TEST(Split, StratifiedSeededAndDisjoint) {
  GeneratedDataset data(300, [](Index, Image& out) { out.reset(3, 2, 2, 0.0f); }, 3);  // 100 per class
  const Split a = stratified_split(data, 0.1, 7);
  const Split b = stratified_split(data, 0.1, 7);
  const Split c = stratified_split(data, 0.1, 8);
  EXPECT_EQ(a.validation, b.validation);
  EXPECT_NE(a.validation, c.validation);
  EXPECT_EQ(a.validation.size(), 30u);
  EXPECT_EQ(a.train.size(), 270u);
  std::vector<int> per_class(3, 0);
  for (Index i : a.validation) ++per_class[static_cast<std::size_t>(data.label(i))];
  EXPECT_EQ(per_class, (std::vector<int>{10, 10, 10}));
  std::vector<Index> all = a.train;
  all.insert(all.end(), a.validation.begin(), a.validation.end());
  std::sort(all.begin(), all.end());
  for (Index i = 0; i < 300; ++i) EXPECT_EQ(all[static_cast<std::size_t>(i)], i);
  SubsetDataset view(data, a.validation);
  EXPECT_EQ(view.size(), 30);
  EXPECT_EQ(view.label(0), data.label(a.validation[0]));
}

// ---- image folders -------------------------------------------------------------------

TEST(ImageFolder, DecodesFormatsConvertsToRgbAndReportsBadFiles) {
  TempDir dir;
  fs::create_directories(dir.path / "cats");
  fs::create_directories(dir.path / "dogs");
  // 2 x 2 pictures; the RGB one is red, green / blue, white.
  const std::vector<std::uint8_t> rgb{255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255};
  write_png(dir / "cats/a.png", 2, 2, rgb);
  stbi_write_bmp((dir / "cats/b.bmp").c_str(), 2, 2, 3, rgb.data());
  stbi_write_tga((dir / "dogs/c.tga").c_str(), 2, 2, 3, rgb.data());
  const std::uint8_t grey[4] = {10, 20, 30, 40};
  stbi_write_png((dir / "dogs/d_grey.png").c_str(), 2, 2, 1, grey, 2);
  const std::uint8_t rgba[16] = {1, 2, 3, 255, 4, 5, 6, 0, 7, 8, 9, 128, 10, 11, 12, 255};
  stbi_write_png((dir / "dogs/e_rgba.png").c_str(), 2, 2, 4, rgba, 8);
  {
    std::ofstream ppm(dir / "dogs/f.ppm", std::ios::binary);
    ppm << "P6\n2 2\n255\n";
    ppm.write(reinterpret_cast<const char*>(rgb.data()), 12);
  }
#ifndef __SANITIZE_ADDRESS__
  // stb's JPEG *writer* shifts negative values (undefined behaviour that UBSan stops on);
  // make check-sanitize skips making this one file, the decoder is covered by the others.
  stbi_write_jpg((dir / "dogs/g.jpg").c_str(), 2, 2, 3, rgb.data(), 95);
  const Index expected_images = 8;
#else
  const Index expected_images = 7;
#endif
  // A 1 x 1 red GIF, byte by byte (stb has no GIF writer); it decodes as its first frame.
  const unsigned char gif[] = {'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0, 0x80, 0, 0, 0xff, 0, 0, 0, 0, 0, ',', 0, 0,
                               0, 0, 1, 0, 1, 0, 0, 2, 2, 'D', 1, 0, ';'};
  std::ofstream(dir / "cats/red.gif", std::ios::binary).write(reinterpret_cast<const char*>(gif), sizeof gif);
  std::ofstream(dir / "dogs/h_corrupt.png") << "\x89PNG\r\n\x1a\n not really a png";
  std::ofstream(dir / "cats/notes.txt") << "not a picture";

  ImageFolderDataset folder(dir.path.string());
  EXPECT_EQ(folder.class_names(), (std::vector<std::string>{"cats", "dogs"}));
  EXPECT_EQ(folder.size(), expected_images);
  ASSERT_EQ(folder.skipped().size(), 2u);
  EXPECT_NE(folder.summary().find("2 unreadable files skipped"), std::string::npos);
  for (const auto& s : folder.skipped()) EXPECT_NE(s.reason.find(s.path), std::string::npos) << s.reason;

  Image image;
  folder.load(0, image);  // cats/a.png
  EXPECT_EQ(folder.label(0), 0);
  EXPECT_EQ(image.shape_str(), "3x2x2");
  EXPECT_EQ(image.at(0, 0, 0), 255);  // red
  EXPECT_EQ(image.at(1, 0, 1), 255);  // green
  EXPECT_EQ(image.at(2, 1, 0), 255);  // blue
  for (Index i = 0; i < folder.size(); ++i) {
    folder.load(i, image);
    if (folder.path(i).find(".gif") != std::string::npos) {
      EXPECT_EQ(image.shape_str(), "3x1x1");
      EXPECT_EQ(image.at(0, 0, 0), 255);
      EXPECT_EQ(image.at(1, 0, 0), 0);
      continue;
    }
    EXPECT_EQ(image.shape_str(), "3x2x2") << folder.path(i);
    if (folder.path(i).find("grey") != std::string::npos) {
      EXPECT_EQ(image.at(0, 1, 1), 40);
      EXPECT_EQ(image.at(2, 1, 1), 40);  // grey repeated into R, G, B
    }
    if (folder.path(i).find("rgba") != std::string::npos) {
      EXPECT_EQ(image.at(2, 1, 0), 9);  // alpha dropped
    }
    if (folder.path(i).find(".ppm") != std::string::npos || folder.path(i).find(".tga") != std::string::npos ||
        folder.path(i).find(".bmp") != std::string::npos) {
      EXPECT_EQ(image.at(2, 1, 0), 255) << folder.path(i);
    }
  }

  const std::string what = data_error([&] { ImageFolderDataset(dir.path.string(), ImageFolderOptions().strict(true)); });
  EXPECT_NE(what.find(dir / "cats/notes.txt"), std::string::npos) << what;
  EXPECT_NE(what.find("cannot decode image"), std::string::npos) << what;
  EXPECT_NE(data_error([&] { ImageFolderDataset(dir / "missing"); }).find("does not exist"), std::string::npos);
  EXPECT_NE(data_error([&] { decode_image(dir / "nothing.png"); }).find("no such file"), std::string::npos);
}

// Hidden entries (".ipynb_checkpoints", ".DS_Store") are neither classes nor
// pictures, and a folder with no readable picture is refused, not accepted empty.
TEST(ImageFolder, HiddenEntriesAreLeftOutAndAnEmptyFolderIsRefused) {
  TempDir dir;
  fs::create_directories(dir.path / "cats");
  fs::create_directories(dir.path / ".ipynb_checkpoints");
  write_png(dir / "cats/a.png", 2, 2, std::vector<std::uint8_t>(12, 7));
  write_png(dir / ".ipynb_checkpoints/b.png", 2, 2, std::vector<std::uint8_t>(12, 7));
  std::ofstream(dir / "cats/.DS_Store") << "not a picture";
  ImageFolderDataset folder(dir.path.string());
  EXPECT_EQ(folder.class_names(), (std::vector<std::string>{"cats"}));
  EXPECT_EQ(folder.size(), 1);
  EXPECT_TRUE(folder.skipped().empty());

  TempDir broken;
  fs::create_directories(broken.path / "cats");
  std::ofstream(broken / "cats/a.png") << "not a png";
  const std::string what = data_error([&] { ImageFolderDataset(broken.path.string()); });
  EXPECT_NE(what.find("has no readable picture (1 files skipped, the first: cannot decode image"), std::string::npos)
      << what;
}

TEST(ImageFolder, HostileHeaderIsRefusedBeforeDecoding) {
  TempDir dir;
  // A PPM header claiming 100000 x 100000 pixels and no data.
  std::ofstream(dir / "huge.ppm", std::ios::binary) << "P6\n100000 100000\n255\n";
  const std::string what = data_error([&] { decode_image(dir / "huge.ppm"); });
  EXPECT_NE(what.find("claims 100000 x 100000 pixels, over the limit"), std::string::npos) << what;
}

// verify(false) reads headers only, through the same pre-checks as decoding: stb's header path
// reaches the same overflows as its decoder (issue 20, item 3).
TEST(ImageFolder, HeaderOnlyScanRunsTheDecodersChecks) {
  TempDir dir;
  fs::create_directories(dir / "a");
  write_png(dir / "a/good.png", 2, 2, std::vector<std::uint8_t>(12, 7));
  const fs::path corpus = fs::path(CONVNET_FUZZ_CORPUS_DIR) / "image";
  fs::copy_file(corpus / "regression_jpeg_huffman_overflow.jpg", dir / "a/huffman.jpg");
  fs::copy_file(corpus / "regression_pnm_header_int_overflow", dir / "a/long.ppm");
  write_png(dir / "a/thin.png", 1000, 1, std::vector<std::uint8_t>(3000, 9));
  const ImageFolderDataset d(dir.path.string(), ImageFolderOptions().verify(false));
  EXPECT_EQ(d.size(), 1);
  std::string reasons;
  for (const auto& s : d.skipped()) reasons += s.path + ": " + s.reason + "\n";
  EXPECT_EQ(d.skipped().size(), 3u) << reasons;
  EXPECT_NE(reasons.find("corrupt JPEG: a Huffman table at byte"), std::string::npos) << reasons;
  EXPECT_NE(reasons.find("PNM header field 1 has 21 digits"), std::string::npos) << reasons;
  EXPECT_NE(reasons.find("an aspect ratio of 1000, over the limit of 100"), std::string::npos) << reasons;
}

// A pipe (or a file that grows while it is read) has no size to check in advance: past the limit
// it is refused, never decoded truncated (issue 20, item 4).
TEST(ImageIo, AFileOverTheLimitFromAPipeIsRefusedNotTruncated) {
  TempDir dir;
  const std::string fifo = dir / "picture.ppm";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // 2,713 bytes: one write of at most PIPE_BUF bytes is atomic, so the writer never sees the reader go.
  const std::string ppm = "P6\n30 30\n255\n" + std::string(2700, 'x');
  std::thread writer([&] {
    const int fd = ::open(fifo.c_str(), O_WRONLY);  // waits for the reader
    if (fd >= 0) {
      [[maybe_unused]] const ssize_t n = ::write(fd, ppm.data(), ppm.size());
      ::close(fd);
    }
  });
  const std::string what = data_error([&] { decode_image(fifo, ImageLimits().max_file_bytes(1000)); });
  writer.join();
  EXPECT_NE(what.find("image " + fifo + " is more than 1000 bytes, over the limit of 1000 bytes"), std::string::npos)
      << what;
}

TEST(Transforms, ResizeRefusesOutputsOverItsLimit) {
  Rng rng(1);
  Image wide(3, 2, 300);
  EXPECT_THROW(Resize::shorter_side(64).max_output_pixels(10000).apply(wide, rng), DataError);  // 64 x 9600
  Resize::shorter_side(4).max_output_pixels(10000).apply(wide, rng);                             // 4 x 600
  EXPECT_EQ(wide.shape_str(), Image(3, 4, 600).shape_str());
  EXPECT_THROW(Resize::exact(5000, 5000), std::invalid_argument);
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

}  // namespace
