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
#include <set>
#include <sstream>
#include <fstream>
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

// The temporary files of atomic writes ("<name>.tmp.XXXXXX") in `folder`, one per line.
std::string temporaries_in(const std::string& folder) {
  std::string found;
  for (const auto& e : fs::directory_iterator(folder)) {
    if (e.path().filename().string().find(".tmp.") != std::string::npos) found += e.path().filename().string() + "\n";
  }
  return found;
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
  const Result resumed = run(resume_run);
  ASSERT_EQ(resumed.status, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("epoch 5/5  train loss"), std::string::npos) << resumed.output;
  EXPECT_EQ(lines(read(dir / "out/metrics.csv")), 6);  // header and five epochs
  // The temporary files of the saves the kills cut short were removed when each run started.
  EXPECT_EQ(temporaries_in(dir / "out"), "") << kills << " kills";
}

// ---- Results are never lost or mixed (issue 40, item 4) ----

// SIGKILL at every rename and write of an epoch's end, and of the report, each followed by a resume in
// the same folder that finishes the run. The program kills itself at the chosen event
// (CONVNET_TEST_KILL_AT, train_command.cpp): exact, whatever the machine's speed. The events are
// the ones a reference run reports (CONVNET_TEST_WRITE_EVENTS), from the first best.ckpt (the end of
// epoch 1, after the per-batch saves of --save-every 1) to the next per-batch save, then the report.
TEST(Outputs, SigkillAtEveryWriteOfAnEpochsEndThenResumeInTheSameFolderFinishes) {
  TempDir dir;
  write_cifar(dir / "cifar", 120);
  const std::string base = kTrain + " --data " + (dir / "cifar") + " --epochs 2" + kSmall + " --save-every 1";
  const Result reference = run("CONVNET_TEST_WRITE_EVENTS=1 " + base + " --out " + (dir / "reference"));
  ASSERT_EQ(reference.status, 0) << reference.output;
  std::vector<std::pair<std::string, std::string>> events;  // (file, stage) in order
  std::istringstream lines_of(reference.output);
  for (std::string line; std::getline(lines_of, line);) {
    if (line.rfind("write-event ", 0) != 0) continue;
    std::istringstream fields(line.substr(12));
    std::string file, stage;
    fields >> file >> stage;
    events.emplace_back(file, stage);
  }
  std::vector<std::size_t> points;
  const auto first_best = std::find(events.begin(), events.end(), std::make_pair(std::string("best.ckpt"), std::string("written")));
  ASSERT_NE(first_best, events.end()) << reference.output;
  for (auto e = first_best; e != events.end(); ++e) {
    if (e != first_best && e->first == "last.ckpt" && e->second == "written" && (e - 1)->first != "best.ckpt") {
      if (std::any_of(first_best, e, [](const auto& x) { return x.first == "curves.png"; })) break;
    }
    points.push_back(static_cast<std::size_t>(e - events.begin()));
  }
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (events[i].first == "report.txt" || events[i].first == "confusion.png") points.push_back(i);
  }
  std::set<std::string> files;
  for (std::size_t p : points) files.insert(events[p].first);
  EXPECT_EQ(files, (std::set<std::string>{"best.ckpt", "last.ckpt", "metrics.csv", "timing.csv", "curves.png", "report.txt",
                                          "confusion.png"}));
  for (std::size_t p : points) {
    const auto& [file, stage] = events[p];
    const long n = std::count(events.begin(), events.begin() + static_cast<long>(p) + 1, events[p]);
    const std::string at = file + ":" + stage + ":" + std::to_string(n);
    const std::string out = dir / ("killed_at_" + std::to_string(p));
    const Result killed = run("CONVNET_TEST_KILL_AT=" + at + " " + base + " --out " + out);
    ASSERT_TRUE(killed.status == -1 || killed.status == 128 + SIGKILL) << at << ": " << killed.status << "\n" << killed.output;
    const Result resumed = run(kTrain + " --resume " + out + "/last.ckpt --data " + (dir / "cifar") + " --threads 2");
    ASSERT_EQ(resumed.status, 0) << "killed at " << at << "\n" << resumed.output;
    EXPECT_EQ(lines(read(out + "/metrics.csv")), 3) << at;  // header and two epochs
    EXPECT_NE(read(out + "/report.txt").find("test"), std::string::npos) << at;
    EXPECT_EQ(Checkpoint::stored_checksum(out + "/best.ckpt").has_value(), true) << at;
    EXPECT_EQ(temporaries_in(out), "") << at;
    std::cout << "killed at " << at << ", resumed to the end\n";
  }
}

// One run per --out (the second names the first's pid); links planted in the folder are replaced,
// never followed; the files honour the umask; temporary files of an earlier run are removed.
TEST(Outputs, OneRunPerFolderAndLinksUmaskAndLeftoversAreHandled) {
  TempDir dir;
  write_cifar(dir / "cifar", 120);
  const std::string out = dir / "out";
  fs::create_directories(out);
  std::ofstream(dir / "precious.txt") << "precious";
  fs::create_symlink(dir / "precious.txt", out + "/metrics.csv");
  fs::create_symlink(dir / "precious.txt", out + "/report.txt");
  std::ofstream(out + "/last.ckpt.tmp.AbC123") << "left by a killed run";
  std::ofstream(out + "/notes.tmp.AbC123") << "not ours";
  const std::string command = kTrain + " --data " + (dir / "cifar") + " --out " + out + " --epochs 1" + kSmall +
                              " --progress-every 1";
  ChildProcess first(std::vector<std::string>{"/bin/sh", "-c", "umask 077; exec " + command});
  std::string line;
  while (first.read_line(line) && progress_of(line) < 1) {
  }
  ASSERT_EQ(progress_of(line), 1) << first.output();  // it trains: it holds the folder
  const Result second = run(command);
  EXPECT_EQ(second.status, 1) << second.output;
  EXPECT_NE(second.output.find("output folder " + out + " is in use by another run (pid "), std::string::npos)
      << second.output;
  const std::string rest = first.read_rest();
  const int status = first.wait();
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << rest;
  EXPECT_NE(rest.find("removed 1 temporary files an interrupted run left in " + out), std::string::npos) << rest;
  EXPECT_EQ(read(dir / "precious.txt"), "precious");
  for (const char* name : {"metrics.csv", "report.txt"}) {
    EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(out + "/" + name))) << name;
  }
  EXPECT_FALSE(fs::exists(out + "/last.ckpt.tmp.AbC123"));
  EXPECT_TRUE(fs::exists(out + "/notes.tmp.AbC123"));  // not one of the run's outputs: left alone
  for (const char* name : {"last.ckpt", "best.ckpt", "metrics.csv", "report.txt", "curves.png"}) {
    const auto perms = fs::status(out + "/" + name).permissions();
    EXPECT_EQ(perms & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write) << name;
  }
}

// --resume A/last.ckpt --out B, where B holds another run's best.ckpt: the report must be of A's best
// epoch. A's best.ckpt (recognised by the checksum A's last.ckpt records) is copied over; without
// it, best.ckpt is rebuilt from last.ckpt when that is the best epoch; else a clear error.
TEST(Outputs, AResumeIntoAnotherFolderReportsThisRunsBestNeverAnothers) {
  TempDir dir;
  write_cifar(dir / "cifar", 120);
  const std::string data = " --data " + (dir / "cifar") + " --epochs 1 --batch-size 32 --threads 2";
  ASSERT_EQ(run(kTrain + data + " --width 0.25 --out " + (dir / "a")).status, 0);
  ASSERT_EQ(run(kTrain + data + " --width 0.125 --out " + (dir / "b")).status, 0);
  const std::string foreign = dir / "foreign.ckpt";
  fs::copy_file(dir / "b/best.ckpt", foreign);
  const auto a_best = Checkpoint::stored_checksum(dir / "a/best.ckpt");
  ASSERT_TRUE(a_best.has_value());
  const std::string resume = kTrain + " --resume " + (dir / "a/last.ckpt") + " --out " + (dir / "b") + " --threads 2";
  Result r = run(resume);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("copied " + (dir / "a/best.ckpt") + " to " + (dir / "b/best.ckpt")), std::string::npos) << r.output;
  EXPECT_EQ(Checkpoint::stored_checksum(dir / "b/best.ckpt"), a_best);
  const std::string a_config = Checkpoint::load(dir / "a/last.ckpt").text("config");
  ASSERT_NE(a_config, Checkpoint::load(foreign).text("config"));
  EXPECT_NE(read(dir / "b/report.txt").find("(" + a_config + ")"), std::string::npos) << read(dir / "b/report.txt");
  // Without A's best.ckpt: last.ckpt is the best epoch's state, so best.ckpt is rebuilt from it.
  fs::remove(dir / "a/best.ckpt");
  fs::copy_file(foreign, dir / "b/best.ckpt", fs::copy_options::overwrite_existing);
  r = run(resume);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("replaced " + (dir / "b/best.ckpt") + " (another run's) from "), std::string::npos) << r.output;
  EXPECT_EQ(Checkpoint::load(dir / "b/best.ckpt").text("config"), a_config);
  // A last.ckpt past its best epoch cannot stand in for it.
  Checkpoint moved = Checkpoint::load(dir / "a/last.ckpt");
  moved.set_u64s("trainer/best", {1, 12345});
  moved.set_u64s("trainer/position", {1, 3});
  moved.save(dir / "a/last.ckpt");
  r = run(resume);
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("is not the best.ckpt of this run (its checksum differs from the one last.ckpt records), and "
                          "last.ckpt has moved past the best epoch (1)"),
            std::string::npos)
      << r.output;
}

#endif  // CONVNET_TRAIN_BIN

}  // namespace
