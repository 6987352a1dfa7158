// Small helpers shared by the tests: scratch folders and generated CIFAR-10 files.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "gzip.hpp"

namespace convnet::testing {

/// A fresh folder under the system's temporary directory, removed afterwards.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    path = std::filesystem::temp_directory_path() /
           ("convnet_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->test_suite_name() + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

/// Writes a CIFAR-10 folder in the official binary layout: record r of file f
/// (0 = test_batch, 1-5 = data_batch_f) has label (f + r) % 10 and pixel k = (r + k) % 256.
inline void write_cifar(const std::string& dir, int records) {
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/batches.meta.txt") << "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n";
  for (int f = 0; f <= 5; ++f) {
    const std::string name = f == 0 ? "test_batch.bin" : "data_batch_" + std::to_string(f) + ".bin";
    std::ofstream out(dir + "/" + name, std::ios::binary);
    for (int r = 0; r < records; ++r) {
      out.put(static_cast<char>((f + r) % 10));
      for (int k = 0; k < 3072; ++k) out.put(static_cast<char>((r + k) % 256));
    }
  }
}

/// Writes a CIFAR-100 folder in the official binary layout: record r of train.bin (test.bin: r + 1)
/// has coarse label r % 20, fine label (3r + 1) % 100 and pixel k = (r + k) % 256.
inline void write_cifar100(const std::string& dir, int records) {
  std::filesystem::create_directories(dir);
  std::ofstream fine(dir + "/fine_label_names.txt"), coarse(dir + "/coarse_label_names.txt");
  for (int c = 0; c < 100; ++c) fine << "fine" << c << "\n";
  for (int c = 0; c < 20; ++c) coarse << "coarse" << c << "\n";
  for (const char* name : {"train.bin", "test.bin"}) {
    std::ofstream out(dir + "/" + name, std::ios::binary);
    const int shift = name[1] == 'e' ? 1 : 0;
    for (int r = shift; r < records + shift; ++r) {
      out.put(static_cast<char>(r % 20));
      out.put(static_cast<char>((3 * r + 1) % 100));
      for (int k = 0; k < 3072; ++k) out.put(static_cast<char>((r + k) % 256));
    }
  }
}

/// The bytes of an IDX file of unsigned bytes with `dims`, its elements from `value(i)`.
template <class F>
std::string idx_bytes(const std::vector<std::uint32_t>& dims, F value) {
  std::string out{'\0', '\0', '\x08', static_cast<char>(dims.size())};
  std::size_t n = 1;
  for (std::uint32_t d : dims) {
    for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((d >> shift) & 0xff);
    n *= d;
  }
  for (std::size_t i = 0; i < n; ++i) out += static_cast<char>(value(i));
  return out;
}


/// Writes an MNIST folder: `train` training and `test` test pictures of h x w, picture i's pixel k
/// = (i * 7 + k) % 256 and label i % 10; gzip-compressed (.gz names) when `gz`.
inline void write_mnist(const std::string& dir, int train, int test, bool gz, std::uint32_t h = 28, std::uint32_t w = 28) {
  std::filesystem::create_directories(dir);
  auto put = [&](const std::string& name, const std::string& bytes) {
#if defined(CONVNET_WITH_ZLIB)
    if (gz) {
      std::ofstream(dir + "/" + name + ".gz", std::ios::binary) << gzip(bytes);
      return;
    }
#endif
    std::ofstream(dir + "/" + name, std::ios::binary) << bytes;
  };
  for (const auto& [prefix, n] : {std::pair<std::string, int>{"train", train}, {"t10k", test}}) {
    const std::size_t plane = std::size_t{h} * w;
    put(prefix + "-images-idx3-ubyte",
        idx_bytes({static_cast<std::uint32_t>(n), h, w}, [&](std::size_t i) { return ((i / plane) * 7 + i % plane) % 256; }));
    put(prefix + "-labels-idx1-ubyte", idx_bytes({static_cast<std::uint32_t>(n)}, [](std::size_t i) { return i % 10; }));
  }
}

}  // namespace convnet::testing
