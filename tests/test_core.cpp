// The core: errors (every error the library throws is a convnet::Error, named by what went wrong).
#include <gtest/gtest.h>

#include <convnet/errors.hpp>
#include <convnet/threading.hpp>
#include <convnet/version.hpp>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace {

using namespace convnet;

TEST(Errors, EachKindIsAConvnetErrorAndItsStandardException) {
  EXPECT_THROW(throw ArgumentError("x"), std::invalid_argument);
  EXPECT_THROW(throw DataError("x"), std::runtime_error);
  EXPECT_THROW(throw LookupError("x"), std::out_of_range);
  EXPECT_THROW(throw SystemError("x"), std::runtime_error);
  EXPECT_THROW(throw StateError("x"), std::logic_error);
  EXPECT_THROW(throw ShapeError("Conv2d", "[1, 3]", "[1, 4]"), Error);
  try {
    throw ArgumentError("--epochs must be in [1, 100000], got 0");
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "--epochs must be in [1, 100000], got 0");
  }
}

TEST(Errors, NumbersAreReadWhollyAndWithoutALocale) {
  EXPECT_EQ(detail::parse_number<long>("42"), 42);
  EXPECT_DOUBLE_EQ(detail::parse_number<double>("0.5"), 0.5);
  EXPECT_DOUBLE_EQ(detail::parse_number<double>("1e-3"), 1e-3);
  for (const char* bad : {"", "4x", " 4", "0,5", "+"}) EXPECT_THROW(detail::parse_number<double>(bad), ArgumentError) << bad;
  EXPECT_THROW(detail::parse_number<long>("99999999999999999999"), ArgumentError);
}

// The rule kept by reading the library's source: a throw names one of convnet's errors (or
// std::bad_alloc, the allocator's own), never a bare standard exception that a caller catching
// convnet::Error would miss.
TEST(Errors, TheLibraryThrowsOnlyItsOwnErrors) {
  const std::regex bare(R"(throw\s+std::(?!bad_alloc\b)\w+)");
  std::vector<std::string> offenders;
  int headers = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(CONVNET_INCLUDE_DIR)) {
    if (entry.path().extension() != ".hpp") continue;
    ++headers;
    std::ifstream in(entry.path());
    std::string line;
    for (int number = 1; std::getline(in, line); ++number) {
      if (std::regex_search(line, bare)) offenders.push_back(entry.path().string() + ":" + std::to_string(number) + ": " + line);
    }
  }
  EXPECT_GT(headers, 50);  // the folder was found and read
  std::ostringstream list;
  for (const auto& o : offenders) list << o << "\n";
  EXPECT_TRUE(offenders.empty()) << list.str();
}

}  // namespace

// ---- the rest of the core: version, threads ------------------------------------------------

namespace {

using namespace convnet;

// One version, written in version.hpp, read by CMake for the package.
TEST(Version, TheHeaderAndThePackageAgree) {
  EXPECT_STREQ(convnet::version, CONVNET_PACKAGE_VERSION);
  EXPECT_EQ(std::to_string(CONVNET_VERSION_MAJOR) + "." + std::to_string(CONVNET_VERSION_MINOR) + "." +
                std::to_string(CONVNET_VERSION_PATCH),
            CONVNET_PACKAGE_VERSION);
}

TEST(Threads, SetFromCode) {
  const int before = num_threads();
  set_num_threads(1);
  EXPECT_EQ(num_threads(), 1);
  EXPECT_EQ(Eigen::nbThreads(), 1);
  set_num_threads(2);
  EXPECT_EQ(num_threads(), 2);
  set_num_threads(before);
}

}  // namespace
