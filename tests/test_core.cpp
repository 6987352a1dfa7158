// The core: errors (every error the library throws is a convnet::Error, named by what went wrong),
// the architecture (includes run downwards), and (below) version, threads, metrics, stop signals.
#include <gtest/gtest.h>

#include <convnet/errors.hpp>
#include <convnet/checkpoint/format.hpp>
#include <convnet/layers/dense.hpp>
#include <convnet/metrics.hpp>
#include <convnet/stop_signals.hpp>
#include <convnet/tensor.hpp>
#include <convnet/threading.hpp>
#include <convnet/train/step.hpp>
#include <convnet/version.hpp>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>
#include <sys/wait.h>
#include <unistd.h>

#include "processes.hpp"

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

// The library's floors, read from its includes: each folder includes only from the folders below it
// (docs/architecture.md), so no arrow runs back up. The format of checkpoints is the floor every
// saved object stands on: it includes nothing but the core.
TEST(Architecture, IncludesRunDownwards) {
  const std::map<std::string, std::set<std::string>> allowed = {
      {"core", {}},
      {"kernels", {"core"}},
      {"checkpoint", {"core"}},
      {"layers", {"core", "kernels"}},
      {"data", {"core", "checkpoint"}},
      {"models", {"core", "kernels", "layers", "checkpoint"}},
      {"losses", {"core", "kernels", "layers", "models"}},
      {"optim", {"core", "kernels", "layers", "models", "checkpoint"}},
      {"distributed", {"core", "kernels", "layers", "models", "checkpoint"}},
      {"inference", {"core", "kernels", "layers", "models", "checkpoint", "data", "losses", "optim"}},
      {"interop", {"core", "kernels", "layers", "models", "checkpoint", "data", "inference"}},
      {"train", {"core", "kernels", "layers", "models", "checkpoint", "data", "losses", "optim", "distributed", "inference"}},
      {"cli", {"core", "kernels", "layers", "models", "checkpoint", "data", "losses", "optim", "distributed", "inference", "interop", "train"}},
  };
  const std::filesystem::path root = CONVNET_INCLUDE_DIR;
  const std::regex include(R"re(#include "([^"]+)")re");
  std::vector<std::string> wrong;
  int arrows = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
    if (entry.path().extension() != ".hpp") continue;
    const std::filesystem::path rel = std::filesystem::relative(entry.path(), root);
    const std::string name = rel.generic_string();
    if (name == "convnet.hpp" || name == "checkpoint.hpp") continue;  // umbrellas: they only include
    const std::string folder = rel.has_parent_path() ? rel.begin()->string() : "core";
    ASSERT_TRUE(allowed.count(folder)) << "a folder the floors do not know: " << folder;
    std::ifstream in(entry.path());
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (std::sregex_iterator m(text.begin(), text.end(), include), end; m != end; ++m) {
      const std::filesystem::path target = (rel.parent_path() / (*m)[1].str()).lexically_normal();
      const std::string to = target.has_parent_path() ? target.begin()->string() : "core";
      ++arrows;
      if (to != folder && !allowed.at(folder).count(to)) wrong.push_back(name + " includes " + target.generic_string());
    }
  }
  EXPECT_GT(arrows, 100);  // the headers were found and read
  std::ostringstream list;
  for (const auto& w : wrong) list << w << "\n";
  EXPECT_TRUE(wrong.empty()) << list.str();
}

}  // namespace

// ---- the rest of the core: the error family, version, threads, metrics, stop signals -----------

namespace {

using namespace convnet;

// One catch takes every error of convnet's own, and each is still the standard exception it naturally is.
TEST(Errors, EveryConvnetErrorIsAConvnetError) {
  auto message_of = [](const std::function<void()>& f) -> std::string {
    try {
      f();
    } catch (const convnet::Error& e) {
      return e.what();
    }
    return "(nothing thrown)";
  };
  Dense<float> dense(DenseOptions(4, 2));
  EXPECT_NE(message_of([&] { dense.forward(Tensor<float>(1, 5, 1, 1)); }).find("expected shape"), std::string::npos);
  EXPECT_NE(message_of([] { Checkpoint::parse("nonsense", "x.ckpt"); }).find("x.ckpt"), std::string::npos);
  EXPECT_NE(message_of([] { throw DataError("bad file"); }), "(nothing thrown)");
  EXPECT_NE(message_of([] { throw NonFiniteLossError("nan"); }), "(nothing thrown)");
  EXPECT_THROW(dense.forward(Tensor<float>(1, 5, 1, 1)), std::invalid_argument);
  EXPECT_THROW(Checkpoint::parse("nonsense"), std::runtime_error);
}

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

TEST(Metrics, LabelsOutsideTheClassesAreRefusedBeforeIndexing) {
  Tensor<float> scores(2, 3, 1, 1);
  scores.setZero();
  try {
    top_k_correct(scores, {0, 7}, 1);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("label 7 of sample 1 is outside [0, 3)"), std::string::npos) << e.what();
  }
  ConfusionMatrix confusion(3);
  EXPECT_THROW(confusion.add(scores, {-1, 0}), std::invalid_argument);
  EXPECT_EQ(confusion.count(0, 0), 0);  // nothing counted from the refused batch
}

// SIGINT and SIGTERM alike: the first sets the flag and says which signal; a second ends the
// process at once, with 128 + its number, without running anything more.
TEST(StopSignals, FirstSignalSetsTheFlagASecondExitsAtOnce) {
  for (const auto& [first, second] : {std::pair<int, int>{SIGTERM, SIGINT}, std::pair<int, int>{SIGINT, SIGTERM}}) {
    convnet::testing::ChildProcess child([first = first, second = second](int fd) {
      ::dup2(fd, STDERR_FILENO);  // where the second signal's message goes
      StopSignals signals;
      ::raise(first);
      const bool seen = signals.received() && signals.signal() == first && signals.exit_status() == 128 + first;
      ::write(fd, seen ? "y" : "n", 1);
      ::raise(second);
      ::write(fd, " and carried on", 15);
    });
    const std::string said = child.read_rest();
    const int status = child.wait();
    EXPECT_EQ(said, "y\nsecond signal: exiting without saving\n");
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 128 + second);
  }
  // Handlers are restored when the guard ends, and only one guard may be installed at a time.
  struct sigaction before {}, after {};
  sigaction(SIGTERM, nullptr, &before);
  {
    StopSignals signals;
    EXPECT_THROW(StopSignals(), std::logic_error);
  }
  sigaction(SIGTERM, nullptr, &after);
  EXPECT_EQ(before.sa_handler, after.sa_handler);
}

}  // namespace
