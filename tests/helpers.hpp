// Small helpers shared by the tests: scratch folders and generated CIFAR-10 files.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

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

}  // namespace convnet::testing
