// Programs killed or interrupted at random moments: a process killed while it
// saves loses nothing it had finished, Ctrl-C saves and resumes, SIGKILL never
// costs more than the batch under way. Every test here synchronises on what
// the child reports through a pipe (a byte per save, a progress line per
// batch), never on a sleep or a deadline; the kill moment is drawn from a
// duration measured on the machine at hand. Their own executable, run
// serially (RUN_SERIAL), so the heaviest tests never share the cores with them.
#include <gtest/gtest.h>

#include <convnet/checkpoint.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "helpers.hpp"
#include "processes.hpp"

namespace {

using namespace convnet;
using namespace convnet::testing;
namespace fs = std::filesystem;

// A process killed at any moment - in the middle of a save included - leaves
// either the previous checkpoint or the new one, never a broken file.
//
// The saving child writes 's' to a pipe when it starts a save and 'e' when the
// save has returned. Each attempt waits for 0, 1 or 2 completed saves and for
// the start of the next, then kills at a random share of a save's duration as
// measured here, so kills land inside saves on a fast or a slow disk; the test
// counts what each kill interrupted and goes on until both cases - killed
// during the very first save, and killed after completed saves - have been
// seen several times.
TEST(Checkpoint, SigkillDuringSavesNeverLeavesABrokenFile) {
  TempDir dir;
  const std::string path = dir.file("state.ckpt");
  const std::size_t count = std::size_t{1} << 19;  // 4 MB a file
  auto save_all = [&](double value) {
    Checkpoint c;
    c.set_f64s("values", std::vector<double>(count, value));
    c.save(path);
  };
  std::vector<double> durations;
  for (int i = 0; i < 3; ++i) {
    const auto start = std::chrono::steady_clock::now();
    save_all(0.0);
    durations.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  const double save_seconds = median_seconds(durations);

  std::mt19937 random(12345);
  double last_seen = 0;
  int killed_in_first_save = 0, killed_after_saves = 0, killed_mid_save = 0;
  for (int attempt = 0; attempt < 400; ++attempt) {
    if (killed_in_first_save >= 3 && killed_after_saves >= 5 && killed_mid_save >= 8) break;
    ChildProcess child([&](int fd) {
      for (double v = last_seen + 1;; v += 1) {  // each file one value repeated, one more than the last
        ::write(fd, "s", 1);
        save_all(v);
        ::write(fd, "e", 1);
      }
    });
    const int wait_for_saves = attempt % 3;
    int completed = 0;
    char c = 0;
    while (completed < wait_for_saves && child.read_byte(c)) completed += c == 'e';
    ASSERT_TRUE(child.read_byte(c) && c == 's');  // the next save has begun
    let_pass(save_seconds * std::uniform_real_distribution<double>(0, 1)(random));
    child.signal(SIGKILL);
    char last = c;
    while (child.read_byte(c)) {
      completed += c == 'e';
      last = c;
    }
    child.wait();

    const Checkpoint loaded = Checkpoint::load(path);  // must not throw
    const std::vector<double> values = loaded.f64s("values");
    ASSERT_EQ(values.size(), count);
    EXPECT_TRUE(std::all_of(values.begin(), values.end(), [&](double v) { return v == values[0]; }));
    // Every reported save is there; a save killed after its rename but before its 'e' may be too.
    EXPECT_GE(values[0], last_seen + completed);
    EXPECT_LE(values[0], last_seen + completed + (last == 's' ? 1 : 0));
    if (last == 's') {
      ++killed_mid_save;
      if (completed == 0) ++killed_in_first_save;
    }
    if (completed > 0) ++killed_after_saves;
    last_seen = values[0];
  }
  std::cout << "save " << save_seconds * 1000 << " ms; kills in the first save " << killed_in_first_save
            << ", after completed saves " << killed_after_saves << ", inside a save " << killed_mid_save << "\n";
  EXPECT_GE(killed_in_first_save, 3);
  EXPECT_GE(killed_after_saves, 5);
  EXPECT_GE(killed_mid_save, 8);
}

#ifdef CONVNET_TRAIN_BIN
const std::string kTrain = std::string(CONVNET_TRAIN_BIN) + " train";
const std::string kSmall = " --width 0.25 --batch-size 32 --threads 2 ";

// Trains on generated CIFAR-10 files (600 training records: 17 batches of 32 an epoch) into
// dir/out, sends `sig` once the trainer reports batch `batch` done (however long its start took),
// and checks the run saved and exited 128 + sig with the command that resumes it.
void interrupt_training(const TempDir& dir, int sig, long batch) {
  write_cifar(dir / "cifar", 120);
  ChildProcess child(words(kTrain + " --data " + (dir / "cifar") + " --out " + (dir / "out") + " --epochs 4" + kSmall +
                           " --progress-every 1"));
  std::string line;
  while (child.read_line(line) && progress_of(line) < batch) {
  }
  ASSERT_EQ(progress_of(line), batch) << child.output();
  child.signal(sig);
  const std::string output = child.read_rest();
  const int status = child.wait();
  ASSERT_TRUE(WIFEXITED(status)) << output;
  ASSERT_EQ(WEXITSTATUS(status), 128 + sig) << output;
  EXPECT_NE(output.find("resume with: convnet train --resume " + (dir / "out/last.ckpt")), std::string::npos) << output;
  const auto position = Checkpoint::load(dir / "out/last.ckpt").u64s("trainer/position");
  EXPECT_EQ(position[0], 0u);
  EXPECT_GE(position[1], static_cast<std::uint64_t>(batch));
}

TEST(Examples, CtrlCSavesACheckpointThatResumeContinues) {
  TempDir dir;
  interrupt_training(dir, SIGINT, 1);
  if (HasFatalFailure()) return;
  const Result resumed = run(kTrain + " --resume " + (dir / "out/last.ckpt") + " --data " + (dir / "cifar") +
                             " --threads 2");
  ASSERT_EQ(resumed.status, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resuming from epoch 1, batch "), std::string::npos) << resumed.output;
  EXPECT_NE(resumed.output.find("epoch 4/4  train loss"), std::string::npos) << resumed.output;
  EXPECT_EQ(lines(read(dir / "out/metrics.csv")), 5);  // header and four epochs
}

// SIGTERM (what schedulers and `docker stop` send) is handled as Ctrl-C is: the run stops at the next
// batch, saves last.ckpt, says how to resume and exits 143. It used to die without saving.
TEST(Examples, SigtermSavesAndExits143) {
  TempDir dir;
  interrupt_training(dir, SIGTERM, 2);
}

// A training run killed (SIGKILL: no chance to clean up) at random moments,
// many times, with a checkpoint written every batch so that some kills land
// inside saves: the newest checkpoint always loads, never loses a save the
// trainer had moved past, and --resume carries on to the end.
//
// Each attempt waits for the trainer's own progress lines (one per batch, so
// a slow start-up is waited out, not raced), measures a batch's duration from
// them, and kills at a random share of it after the 2nd, 3rd or 4th line.
TEST(Examples, SigkillAtRandomMomentsNeverLosesTheLastCheckpoint) {
  TempDir dir;
  write_cifar(dir / "cifar", 120);  // 600 training records: 17 batches of 32 an epoch
  const std::string last = dir / "out/last.ckpt";
  const std::string progress = " --save-every 1 --progress-every 1";
  const std::string first_run =
      kTrain + " --data " + (dir / "cifar") + " --out " + (dir / "out") + " --epochs 5" + kSmall + progress;
  const std::string resume_run = kTrain + " --resume " + last + " --data " + (dir / "cifar") + " --threads 2";
  std::mt19937 random(2024);
  int kills = 0;
  long furthest = -1;
  for (int attempt = 0; attempt < 10; ++attempt) {
    ChildProcess child(words(attempt == 0 ? first_run : resume_run + progress));
    const int lines_before_kill = 2 + attempt % 3;
    long epoch = 0, confirmed = -1;
    double batch_seconds = 0;
    auto previous = std::chrono::steady_clock::now();
    std::string line;
    for (int seen = 0; seen < lines_before_kill && child.read_line(line);) {
      if (line.rfind("epoch ", 0) == 0 && line.find(" batches") != std::string::npos) epoch = std::stol(line.substr(6));
      const long batch = progress_of(line);
      if (batch < 1) continue;
      const auto now = std::chrono::steady_clock::now();
      if (++seen > 1) batch_seconds = std::chrono::duration<double>(now - previous).count();
      previous = now;
      confirmed = (epoch - 1) * 1000 + batch - 1;  // the save that ended the previous batch has returned
    }
    ASSERT_GE(confirmed, 0) << child.output();
    let_pass(batch_seconds * std::uniform_real_distribution<double>(0, 1)(random));
    child.signal(SIGKILL);
    child.read_rest();
    const int status = child.wait();
    ASSERT_TRUE(WIFSIGNALED(status)) << child.output();  // 85 batches: no attempt reaches the end
    ++kills;
    std::cout << "attempt " << attempt << ": killed " << batch_seconds * 1000 << " ms-batch run after "
              << lines_before_kill << " progress lines\n";

    const Checkpoint c = Checkpoint::load(last);  // must not throw
    const auto position = c.u64s("trainer/position");
    const long at = static_cast<long>(position.at(0) * 1000 + position.at(1));
    EXPECT_GE(at, confirmed) << "a save the trainer had moved past is lost";
    EXPECT_GT(at, furthest) << "no progress, or the checkpoint went back in time";
    furthest = at;
  }
  EXPECT_EQ(kills, 10);
  const Result resumed = run(resume_run);
  ASSERT_EQ(resumed.status, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("epoch 5/5  train loss"), std::string::npos) << resumed.output;
  EXPECT_EQ(lines(read(dir / "out/metrics.csv")), 6);  // header and five epochs
}

#endif  // CONVNET_TRAIN_BIN

}  // namespace
