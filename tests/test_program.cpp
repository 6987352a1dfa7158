// The convnet program (apps/convnet: train, predict, summary, to-folder, inspect), run end to end as a
// user runs it, on a few hundred generated CIFAR-10 records.
#include <gtest/gtest.h>

#include <convnet/data/image_io.hpp>
#include <convnet/checkpoint.hpp>
#include <convnet/data/cifar10.hpp>
#include <convnet/data/idx.hpp>
#include <convnet/data/image_folder.hpp>
#include <convnet/models/fast_cifar.hpp>
#include <algorithm>
#include <cmath>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "helpers.hpp"
#include "processes.hpp"

namespace {

using namespace convnet;
using namespace convnet::testing;
namespace fs = std::filesystem;

const std::string kConvnet = CONVNET_BIN;
const std::string kTrain = kConvnet + " train";
const std::string kPredict = kConvnet + " predict";
const std::string kTrainAny = kConvnet + " train";
const std::string kCifarToFolder = kConvnet + " to-folder";
const std::string kSmall = " --width 0.25 --batch-size 32 --threads 2 ";

TEST(Examples, TrainerWritesItsFilesAndPredictorReadsTheCheckpoint) {
  TempDir dir;
  convnet::testing::write_cifar(dir / "cifar", 60);  // 300 training and 60 test records
  const Result train = run(kTrain + " --data " + (dir / "cifar") + " --out " + (dir / "out") + " --epochs 1" + kSmall);
  ASSERT_EQ(train.status, 0) << train.output;
  EXPECT_NE(train.output.find("epoch 1/1  train loss"), std::string::npos) << train.output;
  // The memory high-water mark after the epoch and after the report: the second never below the first.
  std::smatch epoch_peak, final_peak;
  ASSERT_TRUE(std::regex_search(train.output, epoch_peak, std::regex("epoch 1/1 .*  peak memory ([0-9]+) MiB\n")))
      << train.output;
  ASSERT_TRUE(std::regex_search(train.output, final_peak, std::regex("\npeak memory: ([0-9]+) MiB\n"))) << train.output;
  EXPECT_GT(std::stol(epoch_peak[1]), 0);
  EXPECT_GE(std::stol(final_peak[1]), std::stol(epoch_peak[1]));

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
  // The default recipe (issue 19): the half-width BatchNorm network and label-smoothed cross-entropy.
  EXPECT_NE(best.text("config").find("name=cifar-half-bn "), std::string::npos) << best.text("config");
  EXPECT_EQ(best.text("trainer/loss"), "cross-entropy(label_smoothing=0.1) weights=1");
  EXPECT_NE(best.text("trainer/options").find("\nlabel_smoothing=0.1\n"), std::string::npos) << best.text("trainer/options");
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

  // The report's confusion matrix as a picture, and every inspection of the trained network.
  EXPECT_GT(decode_image(dir / "out/confusion.png").width, 10 * 44);
  const std::string inspect = kConvnet + " inspect ";
  const std::string with_best = " --checkpoint " + (dir / "out/best.ckpt");
  const Result filters = run(inspect + "filters" + with_best + " --out " + (dir / "f.png"));
  ASSERT_EQ(filters.status, 0) << filters.output;
  EXPECT_NE(filters.output.find("conv1: 8 kernels, tiles of 40 pixels (scale 8)"), std::string::npos) << filters.output;
  const Result maps = run(inspect + "activations" + with_best + " --layers conv1,relu7 " + (dir / "picture.png") + " --out " + (dir / "a.png"));
  ASSERT_EQ(maps.status, 0) << maps.output;
  EXPECT_NE(maps.output.find("conv1: 8 maps"), std::string::npos) << maps.output;
  const Result saliency = run(inspect + "saliency" + with_best + " --class 3 " + (dir / "picture.png") + " --out " + (dir / "s.png"));
  ASSERT_EQ(saliency.status, 0) << saliency.output;
  EXPECT_NE(saliency.output.find("class 3 (cat), score "), std::string::npos) << saliency.output;
  EXPECT_NE(saliency.output.find("; Grad-CAM at relu5 (7x7)"), std::string::npos) << saliency.output;
  const Result neighbours = run(inspect + "neighbours" + with_best + " --dataset cifar10:" + (dir / "cifar") +
                                " --queries 3 --k 4 --out " + (dir / "n.png"));
  ASSERT_EQ(neighbours.status, 0) << neighbours.output;
  EXPECT_NE(neighbours.output.find("(3 queries, k 4, relu7, euclidean, among 300 training pictures)"), std::string::npos)
      << neighbours.output;
  const Result confusion = run(inspect + "confusion" + with_best + " --dataset cifar10:" + (dir / "cifar") + " --out " + (dir / "c.png"));
  ASSERT_EQ(confusion.status, 0) << confusion.output;
  EXPECT_NE(confusion.output.find("confusion matrix (rows: true class"), std::string::npos) << confusion.output;
  for (const char* picture : {"f.png", "a.png", "s.png", "n.png", "c.png"}) EXPECT_GT(decode_image(dir / picture).width, 100) << picture;
  const Result unknown = run(inspect + "filtres" + with_best);
  EXPECT_EQ(unknown.status, 1);
  EXPECT_NE(unknown.output.find("convnet inspect: unknown inspection 'filtres'"), std::string::npos) << unknown.output;
  const Result no_out = run(inspect + "filters" + with_best);
  EXPECT_NE(no_out.output.find("convnet inspect filters: --out FILE.png is required"), std::string::npos) << no_out.output;
  const Result big_k = run(inspect + "neighbours" + with_best + " --k 101 --out x.png");
  EXPECT_NE(big_k.output.find("--k must be in [1, 100], got 101"), std::string::npos) << big_k.output;
  const Result many = run(inspect + "neighbours" + with_best + " --dataset cifar10:" + (dir / "cifar") + " --queries 1000 --out x.png");
  EXPECT_NE(many.output.find("1000 queries of 6 neighbours at 64 pixels (at most 185 queries are drawn) make a picture of 560 x 88028"),
            std::string::npos) << many.output;
  EXPECT_EQ(many.output.find("neighbours of its class"), std::string::npos) << many.output;  // refused before the search
  const Result not_conv = run(inspect + "filters" + with_best + " --layer fc6 --out x.png");
  EXPECT_NE(not_conv.output.find("layer 'fc6' is a Dense, not a convolution"), std::string::npos) << not_conv.output;
}

// --recipe fast end to end on a few generated records: the fast CIFAR network with its recipe's
// settings (those given beside it kept), its whitening, lookahead and flip-translate views, a
// checkpoint that the predictor and a resumed run read, and the mistakes it refuses.
TEST(Examples, TheFastRecipeTrainsTheFastNetworkAndItsCheckpointTravels) {
  TempDir dir;
  convnet::testing::write_cifar(dir / "cifar", 60);
  const std::string fast = kTrain + " --recipe fast --data " + (dir / "cifar") + " --threads 2 --batch-size 32 --epochs 2";
  const Result train = run(fast + " --out " + (dir / "out"));
  ASSERT_EQ(train.status, 0) << train.output;
  EXPECT_NE(train.output.find("the fast CIFAR network (docs/fast.md): 1971616 parameters"), std::string::npos) << train.output;
  EXPECT_NE(train.output.find("alternating flip"), std::string::npos) << train.output;
  EXPECT_NE(train.output.find("random crop(32x32, padding 2)"), std::string::npos) << train.output;
  EXPECT_NE(train.output.find("linear("), std::string::npos) << train.output;
  const std::string report = read(dir / "out/report.txt");
  EXPECT_NE(report.find("test top-1 (flip-translate, 6 views): "), std::string::npos) << report;
  EXPECT_NE(report.find("test top-1 (centre, 1 view): "), std::string::npos) << report;
  EXPECT_EQ(report.find("embedding ("), std::string::npos) << report;  // the recipe's report is its views
  const Checkpoint best = Checkpoint::load(dir / "out/best.ckpt");
  EXPECT_FALSE(best.contains("config"));  // not an AlexNet: read back by its structure
  EXPECT_NE(best.text("trainer/options").find("\nrecipe=fast\n"), std::string::npos) << best.text("trainer/options");
  EXPECT_NE(best.text("trainer/options").find("\nlabel_smoothing=0.2\n"), std::string::npos);
  EXPECT_NE(best.text("trainer/options").find("\nbatch_size=32\n"), std::string::npos);  // given: kept
  EXPECT_TRUE(best.contains("lookahead/param/conv1.weight"));
  // The whitening layer was computed from the pictures, not left at its random start.
  const std::vector<float> whiten = best.tensor<float>("param/whiten.weight");
  ASSERT_EQ(whiten.size(), 288u);
  for (std::size_t i = 0; i < 144; ++i) ASSERT_EQ(whiten[i + 144], -whiten[i]) << i;  // the negated half
  const Result score = run(kPredict + " --checkpoint " + (dir / "out/best.ckpt") + " --cifar-test " + (dir / "cifar") +
                           " --eval flip-translate");
  ASSERT_EQ(score.status, 0) << score.output;
  EXPECT_NE(score.output.find("CIFAR-10 test (60 images, centre, mirror and one-pixel shifts): top-1 "), std::string::npos)
      << score.output;
  // Resumed from its last checkpoint (the run is complete: nothing left to train): the recorded
  // settings, the fast network, its optimizer groups, schedule and lookahead all load, and the
  // report comes out the same.
  const Result resumed = run(kTrain + " --resume " + (dir / "out/last.ckpt") + " --threads 2");
  ASSERT_EQ(resumed.status, 0) << resumed.output;
  EXPECT_EQ(read(dir / "out/report.txt"), report);
  // Refused: an AlexNet configuration with the fast network, and an unknown recipe.
  const Result config = run(kTrain + " --recipe fast --config cifar --data " + (dir / "cifar") + " --out " + (dir / "x"));
  EXPECT_EQ(config.status, 1);
  EXPECT_NE(config.output.find("--config names an AlexNet configuration; --recipe fast trains the fast CIFAR network"),
            std::string::npos) << config.output;
  const Result width = run(kTrain + " --recipe fast --width 2 --data " + (dir / "cifar") + " --out " + (dir / "x"));
  EXPECT_EQ(width.status, 1);
  EXPECT_NE(width.output.find("--width sets the AlexNet configurations; the fast CIFAR network has its own"), std::string::npos)
      << width.output;
  const Result unknown = run(kTrain + " --recipe quick --data " + (dir / "cifar") + " --out " + (dir / "x"));
  EXPECT_NE(unknown.output.find("--recipe must be alexnet or fast, got quick"), std::string::npos) << unknown.output;
  const Result alexnet = run(kTrain + " --whiten 100 --data " + (dir / "cifar") + " --out " + (dir / "x"));
  EXPECT_EQ(alexnet.status, 1);
  EXPECT_NE(alexnet.output.find("--whiten belongs to --recipe fast"), std::string::npos) << alexnet.output;
  // The ablation's switches: --whiten 0 trains the first layer from its random start, --no-lookahead
  // keeps no slow weights.
  const Result plain = run(fast + " --whiten 0 --no-lookahead --epochs 1 --out " + (dir / "plain"));
  ASSERT_EQ(plain.status, 0) << plain.output;
  const Checkpoint last = Checkpoint::load(dir / "plain/last.ckpt");
  EXPECT_FALSE(last.contains("lookahead/param/conv1.weight"));
  EXPECT_NE(last.text("trainer/options").find("\nwhiten=0\n"), std::string::npos) << last.text("trainer/options");
  const std::vector<float> trained = last.tensor<float>("param/whiten.weight");
  auto fresh = convnet::make_fast_cifar<float>(convnet::FastCifarOptions(), 1);
  const convnet::Parameter<float> start = fresh.layer("whiten").parameters()[0];
  ASSERT_EQ(static_cast<convnet::Index>(trained.size()), start.size);
  float moved = 0;
  for (std::size_t i = 0; i < trained.size(); ++i) moved = std::max(moved, std::abs(trained[i] - start.value[i]));
  EXPECT_GT(moved, 0.0f);  // it trained (frozen, it would be its start exactly)
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

// A network that is not an AlexNet, trained by the example users copy (examples/train_your_own.cpp):
// its best.ckpt is read by convnet predict through its structure, with the classes it was trained on.
TEST(Examples, PredictorReadsTheCheckpointOfTrainYourOwn) {
#ifndef CONVNET_TRAIN_YOUR_OWN
  GTEST_SKIP() << "examples are not built (CONVNET_BUILD_EXAMPLES=OFF)";
#else
  TempDir dir;
  convnet::testing::write_cifar(dir / "cifar", 20);
  const Result train = run(std::string(CONVNET_TRAIN_YOUR_OWN) + " --dataset cifar10:" + (dir / "cifar") +
                           " --epochs 1 --max-batches 2 --batch-size 16 --threads 2 --out " + (dir / "mine"));
  ASSERT_EQ(train.status, 0) << train.output;
  write_png(dir / "picture.png", 20, 24, std::vector<std::uint8_t>(20 * 24 * 3, 120));
  const Result one = run(kPredict + " --checkpoint " + (dir / "mine/best.ckpt") + " " + (dir / "picture.png"));
  ASSERT_EQ(one.status, 0) << one.output;
  EXPECT_NE(one.output.find("(20x24)"), std::string::npos) << one.output;
  for (const char* name : {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}) {
    if (one.output.find(std::string(". ") + name) != std::string::npos) return;  // a CIFAR-10 class name, not "class 3"
  }
  ADD_FAILURE() << "no CIFAR-10 class named in\n" << one.output;
#endif
}

// A checkpoint out to ONNX and back in through the program: the two checkpoints predict alike, and
// a file that is not ONNX is refused naming it.
TEST(Program, ExportAndImportGoThroughOnnxAndBack) {
  TempDir dir;
  const std::string golden = std::string(CONVNET_GOLDEN_DIR) + "/exported_tiny.ckpt";
  const Result out = run(kConvnet + " export --checkpoint " + golden + " --onnx " + (dir / "tiny.onnx"));
  ASSERT_EQ(out.status, 0) << out.output;
  EXPECT_NE(out.output.find("opset 13): input [N, 3, "), std::string::npos) << out.output;
  const Result in = run(kConvnet + " import --onnx " + (dir / "tiny.onnx") + " --out " + (dir / "back.ckpt"));
  ASSERT_EQ(in.status, 0) << in.output;
  EXPECT_NE(in.output.find("(convnet "), std::string::npos) << in.output;
  write_png(dir / "picture.png", 40, 30, std::vector<std::uint8_t>(40 * 30 * 3, 90));
  const Result a = run(kPredict + " --checkpoint " + golden + " " + (dir / "picture.png"));
  const Result b = run(kPredict + " --checkpoint " + (dir / "back.ckpt") + " " + (dir / "picture.png"));
  ASSERT_EQ(a.status, 0) << a.output;
  EXPECT_EQ(a.output, b.output);  // the same classes, names and probabilities
  std::ofstream(dir / "not.onnx") << "hello";
  const Result bad = run(kConvnet + " import --onnx " + (dir / "not.onnx") + " --out " + (dir / "x.ckpt"));
  EXPECT_EQ(bad.status, 1);
  EXPECT_EQ(bad.output.rfind("convnet import: ", 0), 0u) << bad.output;
  EXPECT_NE(bad.output.find(dir / "not.onnx"), std::string::npos) << bad.output;
  EXPECT_FALSE(fs::exists(dir / "x.ckpt"));
}

// One program: its --help lists every subcommand, each answers --help, and a wrong name is refused.
TEST(Program, ListsItsCommandsAndEachAnswersHelp) {
  const Result help = run(kConvnet + " --help");
  ASSERT_EQ(help.status, 0) << help.output;
  for (const std::string command : {"train", "predict", "summary", "to-folder", "inspect"}) {
    EXPECT_NE(help.output.find("\n  " + command + " "), std::string::npos) << command << "\n" << help.output;
    const Result own = run(kConvnet + " " + command + " --help");
    EXPECT_EQ(own.status, 0) << command << "\n" << own.output;
    EXPECT_EQ(own.output.rfind("usage: convnet " + command, 0), 0u) << command << "\n" << own.output;
  }
  const Result unknown = run(kConvnet + " trian");
  EXPECT_EQ(unknown.status, 1);
  EXPECT_NE(unknown.output.find("convnet: unknown command 'trian'"), std::string::npos) << unknown.output;
  EXPECT_EQ(run(kConvnet).status, 1);
  const Result summary = run(kConvnet + " summary --config nope");
  EXPECT_EQ(summary.status, 1);
  EXPECT_NE(summary.output.find("convnet summary: AlexNet: unknown configuration 'nope'; valid names are paper, cifar,"),
            std::string::npos) << summary.output;
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
      {"--dropout 1", "--dropout must be in [0, 0.99], got 1"},
      {"--classes -3", "--classes must be in [0, 100000], got -3"},
      {"--channels 2", "--channels must be 1 or 3 (or 0: the dataset's), got 2"},
      {"--pipeline fancy", "--pipeline must be small or paper, got fancy"},
      {"--eval five-crop", "evaluation views must be centre, flip, ten-crop or flip-translate, got 'five-crop'"},
      {"--lr nan", "--lr must be in (0, 100], got nan"},
  };
  for (const auto& [flag, message] : cases) {
    const Result r = run(kTrain + " " + flag + " --data /nonexistent");
    EXPECT_EQ(r.status, 1) << flag << "\n" << r.output;
    EXPECT_NE(r.output.find("convnet train: " + message), std::string::npos) << flag << "\n" << r.output;
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
  const Result first = run(kTrain + common + " --out " + (dir / "run") + " --epochs 1 --dropout 0.25" + kSmall);
  ASSERT_EQ(first.status, 0) << first.output;
  EXPECT_NE(read(dir / "run/report.txt").find(" dropout=0.25 "), std::string::npos) << read(dir / "run/report.txt");

  // last.ckpt alone, away from its best.ckpt, at the end of its best epoch: best.ckpt is rebuilt from
  // it (the two were the same state). Past the best epoch it cannot be: refused at once, naming what
  // is missing, before any data is read.
  fs::create_directories(dir / "alone");
  fs::copy_file(dir / "run/last.ckpt", dir / "alone/last.ckpt");
  const Result alone = run(kTrain + common + " --resume " + (dir / "alone/last.ckpt"));
  EXPECT_EQ(alone.status, 0) << alone.output;
  EXPECT_NE(alone.output.find("rebuilt missing " + (dir / "alone/best.ckpt") + " from " + (dir / "alone/last.ckpt") +
                              ", which is its epoch 1"),
            std::string::npos) << alone.output;
  fs::create_directories(dir / "past");
  Checkpoint past = Checkpoint::load(dir / "run/last.ckpt");
  past.set_u64s("trainer/position", {1, 2});
  past.save(dir / "past/last.ckpt");
  const Result refused = run(kTrain + common + " --resume " + (dir / "past/last.ckpt"));
  EXPECT_EQ(refused.status, 1) << refused.output;
  EXPECT_NE(refused.output.find("cannot resume " + (dir / "past/last.ckpt") + ": " + (dir / "past/best.ckpt") +
                                " is missing, and last.ckpt has moved past the best epoch (1)"),
            std::string::npos) << refused.output;
  EXPECT_EQ(refused.output.find("loading "), std::string::npos) << refused.output;

  // --out elsewhere: best.ckpt comes along, and the run ends with its report there. The data has moved
  // too: --data names where it is now (the recorded place is gone); another kind of data is refused.
  fs::rename(dir / "cifar", dir / "cifar_moved");
  const Result other = run(kTrain + " --dataset mnist:" + (dir / "cifar_moved") + " --resume " + (dir / "run/last.ckpt"));
  EXPECT_EQ(other.status, 1);
  EXPECT_NE(other.output.find("cannot resume a run on cifar10 data with mnist:"), std::string::npos) << other.output;
  const Result moved = run(kTrain + " --data " + (dir / "cifar_moved") + " --threads 2 --resume " +
                           (dir / "run/last.ckpt") + " --out " + (dir / "moved"));
  ASSERT_EQ(moved.status, 0) << moved.output;
  EXPECT_NE(moved.output.find("loading cifar10:" + (dir / "cifar_moved")), std::string::npos) << moved.output;
  EXPECT_NE(read(dir / "moved/report.txt").find("test top-1: "), std::string::npos);
  EXPECT_NE(read(dir / "moved/report.txt").find(" dropout=0.25 "), std::string::npos);  // recorded, not the default
  fs::rename(dir / "cifar_moved", dir / "cifar");

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
  EXPECT_EQ(wider.output.find("loading "), std::string::npos) << wider.output;
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
  const std::string recorded = "cross-entropy(label_smoothing=0.1)+triplet(margin=1) weights=1,0.5 embedding=relu7";
  EXPECT_EQ(Checkpoint::load(dir / "triplet/last.ckpt").text("trainer/loss"), recorded);
  EXPECT_NE(read(dir / "triplet/report.txt").find("loss: " + recorded), std::string::npos);
  const Result cosine = run(common + " --out " + (dir / "cosine") + " --loss cosine");
  ASSERT_EQ(cosine.status, 0) << cosine.output;
  EXPECT_EQ(Checkpoint::load(dir / "cosine/last.ckpt").text("trainer/loss"), "cosine weights=1");
  // A loss on the logits reports fc7's embedding too, the figure an embedding loss is read by.
  EXPECT_NE(read(dir / "cosine/report.txt").find("embedding (relu7, Euclidean, 60 test pictures): nearest centroid "),
            std::string::npos)
      << read(dir / "cosine/report.txt");

  const Result unknown = run(common + " --out " + (dir / "x") + " --loss focal");
  EXPECT_EQ(unknown.status, 1);
  EXPECT_NE(unknown.output.find("unknown loss 'focal'; valid names are cross-entropy, hinge, squared-hinge, cosine, "
                                "triplet"),
            std::string::npos)
      << unknown.output;
  EXPECT_NE(read(dir / "triplet/report.txt").find("embedding (relu7, Euclidean, "), std::string::npos)
      << read(dir / "triplet/report.txt");
  // An embedding loss alone: fc8 stays untrained, so classes come from the embedding, and so does the
  // validation accuracy that picks best.ckpt.
  const Result alone = run(common + " --out " + (dir / "alone") + " --loss contrastive");
  ASSERT_EQ(alone.status, 0) << alone.output;
  const std::string report = read(dir / "alone/report.txt");
  EXPECT_NE(report.find("embedding (relu7, Euclidean, "), std::string::npos) << report;
  EXPECT_NE(report.find("nearest centroid "), std::string::npos) << report;
  EXPECT_NE(report.find("does not train fc8"), std::string::npos) << report;
  EXPECT_NE(report.find("%, the embedding's split-half nearest centroid)"), std::string::npos) << report;
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

// ---- train: every dataset kind, end to end --------------------------------------------

std::string stored_text(const std::string& checkpoint, const std::string& key) {
  const Checkpoint c = Checkpoint::load(checkpoint);
  return c.contains(key) ? c.text(key) : "(none)";
}

TEST(Examples, TrainRunsOnCifar100WithEitherLabelKind) {
  TempDir dir;
  write_cifar100(dir / "c100", 80);
  for (const char* labels : {"fine", "coarse"}) {
    const std::string out = dir / labels;
    const Result r = run(kTrainAny + " --dataset cifar100:" + (dir / "c100") + " --labels " + labels + " --out " + out +
                         " --epochs 1 --max-batches 2 --eval centre,ten-crop" + kSmall);
    ASSERT_EQ(r.status, 0) << r.output;
    const std::string config = stored_text(out + "/best.ckpt", "config");
    EXPECT_NE(config.find(std::string(" classes=") + (labels[0] == 'f' ? "100 " : "20 ")), std::string::npos) << config;
    const std::string report = read(out + "/report.txt");
    EXPECT_NE(report.find("test top-1 (centre, 1 view): "), std::string::npos) << report;
    EXPECT_NE(report.find("test top-1 (ten-crop, 10 views): "), std::string::npos) << report;
    EXPECT_NE(report.find(labels[0] == 'f' ? "fine99" : "coarse19"), std::string::npos);
  }
  // CIFAR-10 is not read as CIFAR-100, and --classes must agree with the data.
  const Result wrong = run(kTrainAny + " --dataset cifar100:" + (dir / "c100") + " --classes 10 --out " + (dir / "x") + kSmall);
  EXPECT_EQ(wrong.status, 1);
  EXPECT_NE(wrong.output.find("--classes 10 but cifar100:" + (dir / "c100") + " has 100 classes"), std::string::npos)
      << wrong.output;
}

TEST(Examples, TrainRunsOnMnistAndFashionMnistGreyOrReplicated) {
  TempDir dir;
  write_mnist(dir / "mnist", 120, 30, idx_reads_gzip());
  write_mnist(dir / "fashion", 120, 30, false);
  const Result grey = run(kTrainAny + " --dataset mnist:" + (dir / "mnist") + " --out " + (dir / "m") +
                          " --epochs 1 --max-batches 2" + kSmall);
  ASSERT_EQ(grey.status, 0) << grey.output;
  EXPECT_NE(grey.output.find("input 1x28x28"), std::string::npos) << grey.output;
  const std::string config = stored_text(dir / "m/best.ckpt", "config");
  EXPECT_NE(config.find("input=28 channels=1 "), std::string::npos) << config;
  EXPECT_NE(stored_text(dir / "m/best.ckpt", "data/preparation").find("augment=crop "), std::string::npos);  // no flips of digits
  const Result rgb = run(kTrainAny + " --dataset fashion-mnist:" + (dir / "fashion") + " --channels 3 --out " +
                         (dir / "f") + " --epochs 1 --max-batches 2" + kSmall);
  ASSERT_EQ(rgb.status, 0) << rgb.output;
  EXPECT_NE(rgb.output.find("input 3x28x28"), std::string::npos) << rgb.output;
  EXPECT_NE(read(dir / "f/report.txt").find("Ankle boot"), std::string::npos);
  // The predictor reads a grey network's checkpoint and gives it one channel.
  write_png(dir / "seven.png", 20, 24, std::vector<std::uint8_t>(20 * 24 * 3, 200));
  const Result one = run(kPredict + " --checkpoint " + (dir / "m/best.ckpt") + " --eval flip " + (dir / "seven.png"));
  ASSERT_EQ(one.status, 0) << one.output;
  EXPECT_NE(one.output.find("(20x24, centre and mirror)"), std::string::npos) << one.output;
}

// A picture whose header reads but whose compressed data does not: met (and skipped) during training.
void write_corrupt_png(const std::string& path) {
  std::string png;
  stbi_write_png_to_func([](void* context, void* data, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<std::size_t>(size));
  }, &png, 40, 30, 3, std::vector<std::uint8_t>(40 * 30 * 3, 90).data(), 120);
  const auto idat = png.find("IDAT");
  png[idat + 4] = '\xff', png[idat + 5] = '\xff';  // the zlib header
  std::ofstream(path, std::ios::binary) << png;
}

TEST(Examples, TrainRunsThePaperPipelineOnAFolderWithBadGreyAndRgbaPictures) {
  TempDir dir;
  const std::vector<std::string> classes{"ants", "bees", "wasps"};
  for (std::size_t c = 0; c < classes.size(); ++c) {
    for (int i = 0; i < 12; ++i) {
      const std::string part = i < 8 ? "train/" : i < 10 ? "val/" : "test/";
      const fs::path path = dir.path / "pics" / part / classes[c] / ("p" + std::to_string(i) + ".png");
      fs::create_directories(path.parent_path());
      const int w = 40 + 4 * i, h = 36 + static_cast<int>(c);
      std::vector<std::uint8_t> pixels(static_cast<std::size_t>(w * h * 4));
      for (std::size_t k = 0; k < pixels.size(); ++k) pixels[k] = static_cast<std::uint8_t>(k * (c + 3) + i);
      const int channels = i == 1 ? 1 : i == 2 ? 4 : 3;  // a grey and an RGBA picture in every class
      stbi_write_png(path.c_str(), w, h, channels, pixels.data(), w * channels);
    }
  }
  write_corrupt_png(dir / "pics/train/bees/zz_corrupt.png");
  write_corrupt_png(dir / "pics/test/wasps/zz_corrupt.png");
  const std::string out = dir / "out";
  const Result r = run(kTrainAny + " --dataset folder:" + (dir / "pics") + " --config cifar-half --input-size 32 --resize 40" +
                       " --mean image --out " + out + " --epochs 2 --batch-size 8 --width 0.25 --threads 2 --workers 2");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("25 training / 6 validation / 7 test pictures in 3 classes"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("resize(shorter side 40) -> centre crop(40x40) -> subtract mean image(3x40x40) -> random "
                          "crop(32x32) -> random flip(0.5) -> PCA colour"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("skipped 2 unreadable pictures during training (the first: cannot decode image " +
                          (dir / "pics/train/bees/zz_corrupt.png")), std::string::npos) << r.output;  // once an epoch
  const Checkpoint best = Checkpoint::load(out + "/best.ckpt");
  EXPECT_NE(best.text("data/preparation").find("kind=paper input=32 channels=3 resize=40"), std::string::npos);
  EXPECT_EQ(best.f64s("data/pca").size(), 12u);
  EXPECT_TRUE(best.contains("data/mean_image"));
  const std::string report = read(out + "/report.txt");
  EXPECT_NE(report.find("dataset: folder:" + (dir / "pics") + "\n"), std::string::npos) << report;
  EXPECT_NE(report.find("test top-1 (flip, 2 views): "), std::string::npos) << report;
  EXPECT_NE(report.find("unreadable pictures left out: 1\n"), std::string::npos) << report;  // the test part's
  // The predictor prepares a picture as training did: the paper's ten crops of the 40 x 40 centre.
  const Result one = run(kPredict + " --checkpoint " + out + "/best.ckpt --eval ten-crop " + (dir / "pics/test/ants/p10.png"));
  ASSERT_EQ(one.status, 0) << one.output;
  EXPECT_NE(one.output.find("(80x36, ten crops)"), std::string::npos) << one.output;
  EXPECT_NE(one.output.find("  3. "), std::string::npos) << one.output;
}

TEST(Examples, CifarToFolderWritesPicturesThatDecodeToTheRecords) {
  TempDir dir;
  write_cifar(dir / "cifar", 4);
  const Result r = run(kCifarToFolder + " --data " + (dir / "cifar") + " --out " + (dir / "png"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("wrote 20 pictures to " + (dir / "png/train")), std::string::npos) << r.output;
  const Cifar10Dataset binary(dir / "cifar", Cifar10Part::Train);
  const ImageFolderDataset folder(dir / "png/train");
  ASSERT_EQ(folder.size(), 20);
  EXPECT_EQ(folder.class_names(), binary.class_names());
  for (Index i = 0; i < folder.size(); ++i) {
    const std::string name = fs::path(folder.path(i)).stem().string();  // the record's index
    Image a, b;
    folder.load(i, a);
    binary.load(std::stol(name), b);
    EXPECT_EQ(a.pixels, b.pixels) << folder.path(i);
    EXPECT_EQ(folder.label(i), binary.label(std::stol(name)));
  }
  EXPECT_EQ(ImageFolderDataset(dir / "png/test").size(), 4);
}

}  // namespace
