// The readers of data/: CIFAR-10 and CIFAR-100 binaries, MNIST and Fashion-MNIST as IDX (plain and
// gzip), pictures decoded from files and image folders (with their own validation part), the
// stratified split, and TrainingData opening each kind - all on small files the tests write
// themselves in the published formats.
#include <gtest/gtest.h>

#include <convnet/data/image_io.hpp>  // first: it compiles stb
#include <convnet/data/cifar10.hpp>
#include <convnet/data/cifar100.hpp>
#include <convnet/data/dataset.hpp>
#include <convnet/data/idx.hpp>
#include <convnet/data/image.hpp>
#include <convnet/data/image_folder.hpp>
#include <convnet/data/training_data.hpp>
#include <convnet/checkpoint/format.hpp>
#include <convnet/data/file_bytes.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data_helpers.hpp"
#include "helpers.hpp"

namespace {

using namespace convnet;
using namespace convnet::testing;
using convnet::testing::write_cifar;  // beside the overload for a TempDir below
namespace fs = std::filesystem;

std::vector<std::uint8_t> bytes_of(const std::string& s) { return std::vector<std::uint8_t>(s.begin(), s.end()); }

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
  EXPECT_NE(data_error([&] { decode_image(dir / "nothing.png"); }).find("cannot read image " + (dir / "nothing.png") + ": No such file or directory"), std::string::npos);
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

// Decoders (issue 40, item 1). The regression files are the issue's: a 50-byte Radiance picture on
// which stb 2.27's HDR reader loops forever (CVE-2021-42715; HDR is no longer compiled), and a
// 35-byte GIF whose one 1 x 1 frame sits on a 10,000 x 10,000 screen (stb would take 1.2 GB).
TEST(Decoding, FormatsNotDocumentedAreNotCompiledAndAGifsScreenCounts) {
  const fs::path corpus = fs::path(CONVNET_FUZZ_CORPUS_DIR) / "image";
  const std::string hdr = (corpus / "regression_hdr_rle_scanline_cut_at_end.hdr").string();
  EXPECT_EQ(data_error([&] { decode_image(hdr); }), "cannot decode image " + hdr + ": unknown image type");
  TempDir dir;
  std::ofstream(dir / "a.psd", std::ios::binary) << std::string("8BPS\0\1", 6) << std::string(40, '\0');
  EXPECT_NE(data_error([&] { decode_image(dir / "a.psd"); }).find("unknown image type"), std::string::npos);
  const std::string gif = (corpus / "regression_gif_1x1_frame_on_10000x10000_screen.gif").string();
  EXPECT_EQ(data_error([&] { decode_image(gif); }),
            "image " + gif + " is a 10000 x 10000 GIF: decoding it may take 2408740934 bytes, over the limit of " +
                "1073741824 bytes (ImageLimits::max_decoded_bytes)");
}

namespace {
// stb's peak allocations while decoding `bytes`, measured through the arena with no limit.
std::size_t stb_peak(const std::vector<std::uint8_t>& bytes) {
  detail::StbArenaScope arena(std::numeric_limits<std::size_t>::max() / 2);
  int w = 0, h = 0, n = 0;
  stbi_uc* data = stbi_load_from_memory(bytes.data(), static_cast<int>(bytes.size()), &w, &h, &n, 3);
  EXPECT_NE(data, nullptr) << stbi_failure_reason();
  stbi_image_free(data);
  return arena.arena().peak;
}



// A PNG of one IHDR and one IDAT holding `raw` (filter bytes and samples) deflated by stb.
std::vector<std::uint8_t> png_with_data(int width, int height, int depth, int colour, std::vector<std::uint8_t> raw) {
  int zlen = 0;
  unsigned char* z = stbi_zlib_compress(raw.data(), static_cast<int>(raw.size()), &zlen, 6);
  std::vector<std::uint8_t> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  auto be32 = [&](std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(v >> s));
  };
  auto chunk = [&](const char* type, const std::vector<std::uint8_t>& data) {
    be32(static_cast<std::uint32_t>(data.size()));
    out.insert(out.end(), type, type + 4);
    out.insert(out.end(), data.begin(), data.end());
    be32(0);  // stb does not check the CRC
  };
  std::vector<std::uint8_t> ihdr;
  for (int v : {width, height}) {
    for (int s = 24; s >= 0; s -= 8) ihdr.push_back(static_cast<std::uint8_t>(v >> s));
  }
  ihdr.insert(ihdr.end(), {static_cast<std::uint8_t>(depth), static_cast<std::uint8_t>(colour), 0, 0, 0});
  chunk("IHDR", ihdr);
  chunk("IDAT", std::vector<std::uint8_t>(z, z + zlen));
  chunk("IEND", {});
  STBIW_FREE(z);
  return out;
}
}  // namespace

// decode_cost is what decode_image reserves and holds stb to: it must cover every format's real
// peak, or good pictures would be refused. Measured on pictures of every format and kind we can
// write (16-bit RGBA PNG included).
TEST(Decoding, EveryFormatsPeakIsWithinItsDecodeCost) {
  TempDir dir;
  const int w = 300, h = 200;
  std::vector<std::uint8_t> rgb(static_cast<std::size_t>(w * h * 3));
  for (std::size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<std::uint8_t>(i * 7 + i / 913);
  write_png(dir / "a.png", w, h, rgb);
  ASSERT_TRUE(stbi_write_bmp((dir / "a.bmp").c_str(), w, h, 3, rgb.data()));
  ASSERT_TRUE(stbi_write_tga((dir / "a.tga").c_str(), w, h, 3, rgb.data()));
  std::vector<std::vector<std::uint8_t>> pictures;
  for (const char* name : {"a.png", "a.bmp", "a.tga"}) pictures.push_back(read_file_bytes(dir / name, 1 << 26));
  // JPEGs, baseline and progressive, written by PIL (tests/golden/make_jpegs.py): stb's own JPEG writer
  // shifts a negative int, which the UBSan build refuses.
  for (const char* name : {"picture_300x200.jpg", "picture_300x200_progressive.jpg"}) {
    pictures.push_back(read_file_bytes((fs::path(CONVNET_GOLDEN_DIR) / name).string(), 1 << 26));
  }
  std::vector<std::uint8_t> rows;  // 16-bit RGBA: filter byte 0, then 8 bytes a pixel
  for (int y = 0; y < h; ++y) {
    rows.push_back(0);
    for (int x = 0; x < w * 8; ++x) rows.push_back(static_cast<std::uint8_t>(x ^ y));
  }
  pictures.push_back(png_with_data(w, h, 16, 6, rows));
  std::vector<std::uint8_t> gif = read_file_bytes((fs::path(CONVNET_FUZZ_CORPUS_DIR) / "image/one_pixel.gif").string(), 1 << 26);
  gif[6] = gif[8] = 0xE8;  // the screen 1000 x 1000 (0x3E8), the frame 1 x 1
  gif[7] = gif[9] = 0x03;
  pictures.push_back(gif);
  for (const auto& entry : fs::directory_iterator(fs::path(CONVNET_FUZZ_CORPUS_DIR) / "image")) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("regression_", 0) != 0 && name != "truncated.png" && name.rfind("claims_", 0) != 0) pictures.push_back(read_file_bytes(entry.path().string(), 1 << 26));
  }
  for (const auto& bytes : pictures) {
    const ImageInfo info = image_info_from_memory(bytes.data(), bytes.size(), "picture");
    const std::uint64_t floats = 12 * static_cast<std::uint64_t>(info.width * info.height);
    const std::size_t peak = stb_peak(bytes);
    EXPECT_GT(peak, 0u);
    EXPECT_LE(peak + floats, decode_cost(bytes.data(), bytes.size(), info))
        << format_name(image_format(bytes.data(), bytes.size())) << " " << info.width << " x " << info.height;
    EXPECT_EQ(decode_image_from_memory(bytes.data(), bytes.size(), "picture").width, info.width);
  }
}

// A PNG whose data inflates far past what its header says (16 x 16, then 8 MB of zeros in an 81 KB
// file; a better compressor would need 8 KB): stb's
// inflater would grow its buffer to follow; the arena stops it at the picture's cost.
TEST(Decoding, DataThatInflatesPastItsHeaderIsRefused) {
  const std::vector<std::uint8_t> bomb = png_with_data(16, 16, 8, 2, std::vector<std::uint8_t>(8 << 20, 0));
  ASSERT_LT(bomb.size(), 100000u);
  const std::string what = data_error([&] { decode_image_from_memory(bomb.data(), bomb.size(), "bomb.png"); });
  EXPECT_EQ(what.rfind("cannot decode image bomb.png: decoding this 16 x 16 PNG needed more than the ", 0), 0u)
      << what;
  EXPECT_NE(what.find("bytes its size allows (corrupt or hostile data)"), std::string::npos) << what;
}

// stb's memory starts zeroed whatever was allocated and freed before: stb 2.27 reads decoder state a
// crafted JPEG never sets (a Huffman table it uses but never defines), so with malloc's leftovers that
// picture decoded differently after others and once failed stb's own assertion, reading past a table
// (found by fuzzing; the input is tests/fuzz/corpus/image/regression_jpeg_undefined_huffman_table_*).
TEST(Decoding, StbsMemoryStartsZeroedWhateverCameBefore) {
  const std::string jpeg = (fs::path(CONVNET_FUZZ_CORPUS_DIR) / "image" /
                            "regression_jpeg_undefined_huffman_table_after_other_pictures.jpg").string();
  const std::vector<std::uint8_t> bytes = read_file_bytes(jpeg, 1 << 20);
  std::vector<float> first;
  for (int round = 0; round < 3; ++round) {
    for (std::size_t size : {64u, 4096u, 20000u}) {  // leave dirty blocks of the decoder's sizes behind
      auto* p = static_cast<unsigned char*>(detail::stb_arena_malloc(size));
      std::memset(p, 0xAB, size);
      detail::stb_arena_free(p);
      auto* q = static_cast<unsigned char*>(detail::stb_arena_malloc(size));
      EXPECT_TRUE(std::all_of(q, q + size, [](unsigned char c) { return c == 0; })) << size;
      detail::stb_arena_free(q);
    }
    std::vector<float> pixels;
    try {
      pixels = decode_image_from_memory(bytes.data(), bytes.size(), "regression.jpg").pixels;
    } catch (const DataError&) {
    }
    if (round == 0) first = pixels;
    EXPECT_EQ(pixels, first) << "round " << round;
  }
}

// Decoding threads share one budget: four threads decoding pictures that each reserve over a third
// of it never hold more than it together, and a picture that alone needs more is refused.
TEST(Decoding, ThreadsShareOneBudget) {
  std::vector<std::uint8_t> rgb(400 * 400 * 3, 100);
  TempDir dir;
  write_png(dir / "a.png", 400, 400, rgb);
  const std::vector<std::uint8_t> png = read_file_bytes(dir / "a.png", 1 << 26);
  const std::uint64_t cost = decode_cost(png.data(), png.size(), image_info_from_memory(png.data(), png.size(), "a"));
  ImageDecodeBudget& budget = ImageDecodeBudget::process();
  const std::uint64_t total = budget.total();
  budget.set_total(cost * 5 / 2);  // room for two at once
  budget.reset_peak();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 5; ++i) EXPECT_EQ(decode_image_from_memory(png.data(), png.size(), "a.png").width, 400);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_GE(budget.peak(), cost);
  EXPECT_LE(budget.peak(), cost * 5 / 2);
  EXPECT_EQ(budget.in_use(), 0u);
  budget.set_total(cost - 1);
  EXPECT_NE(data_error([&] { decode_image_from_memory(png.data(), png.size(), "a.png"); })
                .find("bytes all decoding may hold (set_image_decode_budget)"),
            std::string::npos);
  budget.set_total(total);
}

// Only regular files are read (issue 40, item 2): a FIFO with no writer (whose open would block
// forever), a device without end (/dev/zero, behind a link), a directory - each refused at once,
// naming the path, by every reader: pictures, IDX, CIFAR names and batches, checkpoints.
TEST(Files, FifosDevicesAndDirectoriesAreRefusedNamingThePath) {
  TempDir dir;
  const std::string fifo = dir / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::string zero = dir / "zero";
  fs::create_symlink("/dev/zero", zero);
  fs::create_directories(dir / "folder");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {fifo, "is a FIFO, not a regular file"}, {zero, "is a character device, not a regular file"},
      {dir / "folder", "is a directory, not a regular file"}};
  for (const auto& [path, says] : cases) {
    EXPECT_EQ(data_error([&] { decode_image(path); }), "image " + path + " " + says);
    EXPECT_EQ(data_error([&] { read_file_bytes(path, 1000, "IDX file", "IdxLimits::max_bytes"); }),
              "IDX file " + path + " " + says);
    try {
      Checkpoint::load(path);
      ADD_FAILURE() << path << " was loaded";
    } catch (const CheckpointError& e) {
      EXPECT_EQ(std::string(e.what()), "checkpoint " + path + " " + says);
    }
  }
  // A CIFAR-10 folder whose names file is a FIFO, then a link to /dev/zero; then a batch that is one.
  convnet::testing::write_cifar(dir / "cifar", 4);
  fs::remove(dir / "cifar/batches.meta.txt");
  ASSERT_EQ(::mkfifo((dir / "cifar/batches.meta.txt").c_str(), 0600), 0);
  EXPECT_EQ(data_error([&] { Cifar10Dataset(dir / "cifar", Cifar10Part::Test); }),
            "CIFAR-10 class names " + (dir / "cifar/batches.meta.txt") + " is a FIFO, not a regular file");
  fs::remove(dir / "cifar/batches.meta.txt");
  fs::create_symlink("/dev/zero", dir / "cifar/batches.meta.txt");
  EXPECT_EQ(data_error([&] { Cifar10Dataset(dir / "cifar", Cifar10Part::Test); }),
            "CIFAR-10 class names " + (dir / "cifar/batches.meta.txt") + " is a character device, not a regular file");
  convnet::testing::write_cifar(dir / "cifar2", 4);
  fs::remove(dir / "cifar2/test_batch.bin");
  fs::create_symlink("/dev/zero", dir / "cifar2/test_batch.bin");
  EXPECT_EQ(data_error([&] { Cifar10Dataset(dir / "cifar2", Cifar10Part::Test); }),
            "CIFAR-10 file " + (dir / "cifar2/test_batch.bin") + " is a character device, not a regular file");
}

// A regular file over the limit is refused before its bytes are read.
TEST(Files, ARegularFileOverTheLimitIsRefusedBeforeItIsRead) {
  TempDir dir;
  std::ofstream(dir / "big.ppm") << "P6\n30 30\n255\n" << std::string(2700, 'x');
  EXPECT_EQ(data_error([&] { decode_image(dir / "big.ppm", ImageLimits().max_file_bytes(1000)); }),
            "image " + (dir / "big.ppm") + " is 2713 bytes, over the limit of 1000 bytes (ImageLimits::max_file_bytes)");
}

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

// ---- the split, and TrainingData --------------------------------------------------------

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

}  // namespace
