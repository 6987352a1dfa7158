// The trainer and the predictor, run end to end as a user runs them, on a few
// hundred generated CIFAR-10 records.
#include <gtest/gtest.h>

#include <convnet/data/image_io.hpp>
#include <convnet/checkpoint.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "helpers.hpp"
#include "processes.hpp"

namespace {

using namespace convnet;
using namespace convnet::testing;
namespace fs = std::filesystem;

const std::string kTrain = CONVNET_TRAIN_BIN;
const std::string kPredict = CONVNET_PREDICT_BIN;
const std::string kSmall = " --width 0.25 --batch-size 32 --threads 2 ";

TEST(Examples, TrainerWritesItsFilesAndPredictorReadsTheCheckpoint) {
  TempDir dir;
  convnet::testing::write_cifar(dir / "cifar", 60);  // 300 training and 60 test records
  const Result train = run(kTrain + " --data " + (dir / "cifar") + " --out " + (dir / "out") + " --epochs 1" + kSmall);
  ASSERT_EQ(train.status, 0) << train.output;
  EXPECT_NE(train.output.find("epoch 1/1  train loss"), std::string::npos) << train.output;

  const std::string csv = read(dir / "out/metrics.csv");
  EXPECT_EQ(lines(csv), 2) << csv;
  EXPECT_EQ(csv.rfind("epoch,train_loss,train_accuracy,val_loss,val_accuracy,learning_rate\n1,", 0), 0u) << csv;
  EXPECT_EQ(read(dir / "out/timing.csv").rfind("epoch,seconds\n1,", 0), 0u);
  const Image curves = decode_image(dir / "out/curves.png");
  EXPECT_EQ(curves.width, 1000);
  EXPECT_EQ(curves.height, 420);
  const std::string report = read(dir / "out/report.txt");
  EXPECT_NE(report.find("test top-1: "), std::string::npos) << report;
  EXPECT_NE(report.find("test top-5: "), std::string::npos);
  EXPECT_NE(report.find("confusion matrix"), std::string::npos);
  EXPECT_NE(report.find("truck"), std::string::npos);
  const Checkpoint best = Checkpoint::load(dir / "out/best.ckpt");
  EXPECT_NE(best.text("config").find("name=cifar-half"), std::string::npos);
  EXPECT_EQ(best.f64s("data/mean").size(), 3u);
  EXPECT_TRUE(fs::exists(dir / "out/last.ckpt"));

  // The predictor: the whole test set, a mosaic of random test pictures, and one picture file.
  const Result score = run(kPredict + " --checkpoint " + (dir / "out/best.ckpt") + " --cifar-test " + (dir / "cifar"));
  ASSERT_EQ(score.status, 0) << score.output;
  EXPECT_NE(score.output.find("CIFAR-10 test (60 images): top-1 "), std::string::npos) << score.output;
  const Result mosaic = run(kPredict + " --checkpoint " + (dir / "out/best.ckpt") + " --cifar-test " + (dir / "cifar") +
                            " --random 7 --out " + (dir / "mosaic.png"));
  ASSERT_EQ(mosaic.status, 0) << mosaic.output;
  EXPECT_EQ(lines(mosaic.output), 8) << mosaic.output;  // seven pictures and "wrote ..."
  EXPECT_EQ(decode_image(dir / "mosaic.png").width, 5 * 330);
  write_png(dir / "picture.png", 3, 2, std::vector<std::uint8_t>(18, 200));
  const Result one = run(kPredict + " --checkpoint " + (dir / "out/best.ckpt") + " --ten-crop " + (dir / "picture.png"));
  ASSERT_EQ(one.status, 0) << one.output;
  EXPECT_NE(one.output.find("(3x2, ten crops)"), std::string::npos) << one.output;
  EXPECT_NE(one.output.find("  5. "), std::string::npos) << one.output;
  const Result bad = run(kPredict + " --checkpoint " + (dir / "missing.ckpt") + " x.png");
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.output.find("cannot open checkpoint " + (dir / "missing.ckpt")), std::string::npos) << bad.output;
}

// tools/export_pytorch.py's output, unchanged (tests/golden/exported_tiny.ckpt).
TEST(Examples, PredictorTakesAModelExportedFromPyTorch) {
  TempDir dir;
  write_png(dir / "picture.png", 40, 30, std::vector<std::uint8_t>(40 * 30 * 3, 90));
  const Result one = run(kPredict + " --checkpoint " + std::string(CONVNET_GOLDEN_DIR) + "/exported_tiny.ckpt " +
                         (dir / "picture.png"));
  ASSERT_EQ(one.status, 0) << one.output;
  EXPECT_NE(one.output.find("(40x30)"), std::string::npos) << one.output;
  EXPECT_NE(one.output.find("  1. class"), std::string::npos) << one.output;  // names from --class-names
  EXPECT_NE(one.output.find("  5. class"), std::string::npos) << one.output;
}

TEST(Examples, TrainerExplainsMissingDataAndBadFlags) {
  TempDir dir;
  const Result missing = run(kTrain + " --data " + (dir / "nowhere") + " --out " + (dir / "out"));
  EXPECT_EQ(missing.status, 2);
  EXPECT_NE(missing.output.find("cifar-10-binary.tar.gz"), std::string::npos) << missing.output;
  EXPECT_NE(missing.output.find("c32a1d4ab5d03f1284b67883e8d87530"), std::string::npos) << missing.output;
  const Result unknown = run(kTrain + " --epoch 3");
  EXPECT_EQ(unknown.status, 1);
  EXPECT_NE(unknown.output.find("unknown option --epoch"), std::string::npos) << unknown.output;
  EXPECT_EQ(run(kTrain + " --help").status, 0);
  // An output folder that cannot be created is reported before any training.
  convnet::testing::write_cifar(dir / "cifar", 10);
  std::ofstream(dir / "a_file") << "x";
  const Result unwritable = run(kTrain + " --data " + (dir / "cifar") + " --out " + (dir / "a_file/out"));
  EXPECT_EQ(unwritable.status, 1);
  EXPECT_NE(unwritable.output.find("cannot create output folder " + (dir / "a_file/out")), std::string::npos)
      << unwritable.output;
  EXPECT_EQ(unwritable.output.find("epoch 1/"), std::string::npos) << unwritable.output;
}

// Every flag has a range, checked before anything runs, with an error naming the flag and the range;
// a checkpoint's recorded settings go through the same checks when a run resumes.
TEST(Examples, EveryFlagHasARange) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--threads 5000000000", "--threads must be in [0, 1024], got 5000000000"},
      {"--threads -1", "--threads must be in [0, 1024], got -1"},
      {"--workers 100000", "--workers must be in [0, 64], got 100000"},
      {"--batch-size 0", "--batch-size must be in [1, 65536], got 0"},
      {"--epochs 99999999999999999999", "--epochs needs an integer in [1, 100000], got '99999999999999999999'"},
      {"--val-fraction 0", "--val-fraction must be in (0, 0.5], got 0"},
      {"--width 0", "--width must be in (0, 16], got 0"},
      {"--classes -3", "--classes must be in [1, 100000], got -3"},
      {"--lr nan", "--lr must be in (0, 100], got nan"},
  };
  for (const auto& [flag, message] : cases) {
    const Result r = run(kTrain + " " + flag + " --data /nonexistent");
    EXPECT_EQ(r.status, 1) << flag << "\n" << r.output;
    EXPECT_NE(r.output.find("cifar10_train: " + message), std::string::npos) << flag << "\n" << r.output;
  }
  const Result predict = run(kPredict + " --threads 5000000000 --checkpoint x.ckpt y.png");
  EXPECT_EQ(predict.status, 1);
  EXPECT_NE(predict.output.find("--threads must be in [0, 1024], got 5000000000"), std::string::npos) << predict.output;
}

// What a resumed run needs is checked before any data is read: the checkpoint's settings and
// parameters, and best.ckpt (the best epoch so far, which the final report reads), copied over when
// --out names another folder. It used to train to the end and only then fail to find best.ckpt.
TEST(Examples, ResumeChecksWhatItWillNeedBeforeTraining) {
  TempDir dir;
  convnet::testing::write_cifar(dir / "cifar", 40);
  const std::string common = " --data " + (dir / "cifar") + " --threads 2";
  const Result first = run(kTrain + common + " --out " + (dir / "run") + " --epochs 1" + kSmall);
  ASSERT_EQ(first.status, 0) << first.output;

  // last.ckpt alone, away from its best.ckpt: refused at once, naming what is missing.
  fs::create_directories(dir / "alone");
  fs::copy_file(dir / "run/last.ckpt", dir / "alone/last.ckpt");
  const Result alone = run(kTrain + common + " --resume " + (dir / "alone/last.ckpt"));
  EXPECT_EQ(alone.status, 1) << alone.output;
  EXPECT_NE(alone.output.find("cannot resume " + (dir / "alone/last.ckpt") + ": " + (dir / "alone/best.ckpt") +
                              ", the best epoch so far (the final report reads it), is missing"),
            std::string::npos) << alone.output;
  EXPECT_EQ(alone.output.find("loading CIFAR-10"), std::string::npos) << alone.output;

  // --out elsewhere: best.ckpt comes along, and the run ends with its report there.
  const Result moved = run(kTrain + common + " --resume " + (dir / "run/last.ckpt") + " --out " + (dir / "moved"));
  ASSERT_EQ(moved.status, 0) << moved.output;
  EXPECT_NE(read(dir / "moved/report.txt").find("test top-1: "), std::string::npos);

  // Recorded settings out of range, or a configuration its tensors do not match: refused before loading.
  Checkpoint c = Checkpoint::load(dir / "run/last.ckpt");
  std::string options = c.text("trainer/options");
  options.replace(options.find("width=0.25"), 10, "width=1e9");
  c.set_text("trainer/options", options);
  c.save(dir / "run/hostile.ckpt");
  const Result hostile = run(kTrain + common + " --resume " + (dir / "run/hostile.ckpt"));
  EXPECT_EQ(hostile.status, 1);
  EXPECT_NE(hostile.output.find("--width must be in (0, 16], got 1e9"), std::string::npos) << hostile.output;
  options.replace(options.find("width=1e9"), 9, "width=0.5");
  c.set_text("trainer/options", options);
  c.save(dir / "run/hostile.ckpt");
  const Result wider = run(kTrain + common + " --resume " + (dir / "run/hostile.ckpt"));
  EXPECT_EQ(wider.status, 1);
  EXPECT_NE(wider.output.find("needs parameter conv1.weight [16, 3, 5, 5] but it holds [8, 3, 5, 5]"),
            std::string::npos) << wider.output;
  EXPECT_EQ(wider.output.find("loading CIFAR-10"), std::string::npos) << wider.output;
}

// --download runs curl from an argument vector: a folder name with a quote and
// a semicolon is a name, not a command. A stand-in curl records its arguments
// and fails, so nothing is fetched.
TEST(Examples, DownloadPassesTheFolderToCurlWithoutAShell) {
  TempDir dir;
  fs::create_directories(dir / "bin");
  {
    std::ofstream curl(dir / "bin/curl");
    curl << "#!/bin/sh\nprintf '%s\\n' \"$@\" > " << (dir / "args.txt") << "\nexit 1\n";
  }
  fs::permissions(dir / "bin/curl", fs::perms::owner_all);
  const std::string hostile = dir / "x'; touch pwned; echo '";
  const Result r = run("cd " + dir.path.string() + " && PATH=" + (dir / "bin") + ":$PATH " + kTrain + " --download --data \"" +
                       hostile + "/cifar\" --out " + (dir / "out"));
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("download failed (curl)"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir / "pwned"));
  EXPECT_NE(read(dir / "args.txt").find(hostile + "/cifar-10-binary.tar.gz\n"), std::string::npos)
      << read(dir / "args.txt");
}

TEST(Examples, TrainerTakesEveryLossAndRecordsItInTheCheckpoint) {
  TempDir dir;
  convnet::testing::write_cifar(dir / "cifar", 60);
  const std::string common = kTrain + " --data " + (dir / "cifar") + " --epochs 1 --max-batches 3" + kSmall;
  const Result combined =
      run(common + " --out " + (dir / "triplet") + " --loss cross-entropy+triplet --loss-weights 1,0.5");
  ASSERT_EQ(combined.status, 0) << combined.output;
  const std::string recorded = "cross-entropy+triplet(margin=1) weights=1,0.5 embedding=relu7";
  EXPECT_EQ(Checkpoint::load(dir / "triplet/last.ckpt").text("trainer/loss"), recorded);
  EXPECT_NE(read(dir / "triplet/report.txt").find("loss: " + recorded), std::string::npos);
  const Result cosine = run(common + " --out " + (dir / "cosine") + " --loss cosine");
  ASSERT_EQ(cosine.status, 0) << cosine.output;
  EXPECT_EQ(Checkpoint::load(dir / "cosine/last.ckpt").text("trainer/loss"), "cosine weights=1");

  const Result unknown = run(common + " --out " + (dir / "x") + " --loss focal");
  EXPECT_EQ(unknown.status, 1);
  EXPECT_NE(unknown.output.find("unknown loss 'focal'; valid names are cross-entropy, hinge, squared-hinge, cosine, "
                                "triplet"),
            std::string::npos)
      << unknown.output;
  const Result alone = run(common + " --out " + (dir / "x") + " --loss triplet");
  EXPECT_EQ(alone.status, 1);
  EXPECT_NE(alone.output.find("fc8 (the classifier) would never learn"), std::string::npos) << alone.output;
  const Result weights = run(common + " --out " + (dir / "x") + " --loss hinge --loss-weights 1,2");
  EXPECT_EQ(weights.status, 1);
  EXPECT_NE(weights.output.find("has 1 terms but 2 weights"), std::string::npos) << weights.output;
}

// Same seed, same thread count: the same numbers, to the last digit.
TEST(Examples, SameSeedAndThreadsGiveIdenticalMetrics) {
  TempDir dir;
  convnet::testing::write_cifar(dir / "cifar", 60);
  const std::string common = kTrain + " --data " + (dir / "cifar") + " --epochs 2 --workers 2" + kSmall;
  for (const char* name : {"a", "b"}) ASSERT_EQ(run(common + " --out " + (dir / name)).status, 0);
  ASSERT_EQ(run(common + " --out " + (dir / "c") + " --seed 2").status, 0);
  const std::string a = read(dir / "a/metrics.csv"), b = read(dir / "b/metrics.csv"), c = read(dir / "c/metrics.csv");
  EXPECT_EQ(lines(a), 3) << a;
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);  // the seed does matter, so equality above is not vacuous
}

}  // namespace
