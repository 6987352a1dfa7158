// Your own network, trained with the library's Trainer: the program to copy.
//
//   train_your_own --cifar10 DIR [--epochs 3] [--out runs/mine]
//   train_your_own --folder DIR              (DIR/<class>/<picture>, any size: resized to 32 x 32)
#include <convnet/convnet.hpp>

#include <iostream>
#include <memory>

#include "cli.hpp"

using namespace convnet;

int main(int argc, char** argv) try {
  std::string cifar10, folder, out = "runs/mine";
  long epochs = 3, batch_size = 64, max_batches = 0;
  bool help = false;
  cli::OptionTable table("usage: train_your_own (--cifar10 DIR | --folder DIR) [options]\n",
                         {{"options",
                           {{"--cifar10", "DIR", "CIFAR-10 in its binary layout", &cifar10},
                            {"--folder", "DIR", "pictures in DIR/<class>/", &folder},
                            {"--epochs", "N", "epochs to train", &epochs},
                            {"--batch-size", "N", "pictures per step", &batch_size},
                            {"--max-batches", "N", "batches per epoch (0: all)", &max_batches},
                            {"--out", "DIR", "where last.ckpt and best.ckpt go", &out},
                            {"--help", "", "this text", &help}}}});
  table.parse(argc, argv);
  if (help || cifar10.empty() == folder.empty()) {
    table.print_usage(help ? std::cout : std::cerr);
    return help ? 0 : 1;
  }

  // The data: a training set, a validation set held out from it, and the transforms.
  std::unique_ptr<Dataset> all;
  if (!folder.empty()) all = std::make_unique<ImageFolderDataset>(folder);
  else all = std::make_unique<Cifar10Dataset>(cifar10, Cifar10Part::Train);
  const Split split = stratified_split(*all, 0.1, /*seed=*/1);
  const SubsetDataset train_set(*all, split.train), val_set(*all, split.validation);
  Pipeline resize;
  resize.add<Resize>(Resize::exact(32, 32));
  const ChannelStats stats = compute_channel_stats(train_set, &resize);
  Pipeline train_pipeline = resize, eval_pipeline = resize;
  train_pipeline.add<RandomCrop>(32, 32, 4).add<RandomHorizontalFlip>().add<Normalize>(stats);
  eval_pipeline.add<Normalize>(stats);
  DataLoader train_loader(train_set, train_pipeline, LoaderOptions().batch_size(batch_size));
  DataLoader val_loader(val_set, eval_pipeline, LoaderOptions().batch_size(256).shuffle(false));

  // The network: two convolutions and a classifier.
  Sequential<float> net;
  net.add<Conv2d<float>>("conv1", Conv2dOptions(3, 32, 3).padding(1));
  net.add<ReLU<float>>("relu1");
  net.add<MaxPool2d<float>>("pool1", MaxPool2dOptions(2));
  net.add<Conv2d<float>>("conv2", Conv2dOptions(32, 64, 3).padding(1));
  net.add<ReLU<float>>("relu2");
  net.add<MaxPool2d<float>>("pool2", MaxPool2dOptions(2));
  net.add<Flatten<float>>("flatten");
  net.add<Dense<float>>("fc", DenseOptions(64 * 8 * 8, all->classes()));

  // The training: cross-entropy, SGD with Nesterov momentum, one-cycle learning rate.
  SoftmaxCrossEntropy<float> loss;
  Sgd<float> sgd(net.parameters(), SgdOptions(0.05).momentum(0.9).nesterov(true).weight_decay(5e-4));
  const Index batches = max_batches > 0 ? std::min<Index>(max_batches, train_loader.batches_per_epoch())
                                        : train_loader.batches_per_epoch();
  OneCycleLR schedule(OneCycleLROptions(0.05, epochs * batches));
  TrainerOptions options = TrainerOptions().epochs(epochs).checkpoint_dir(out);
  if (max_batches > 0) options.max_batches(max_batches);
  Trainer<float> trainer(net, loss, sgd, &schedule, options);
  ProgressPrinter progress(std::cout, std::cerr);
  trainer.add_callback(progress);
  trainer.fit(train_loader, &val_loader);

  // The trained network as a classifier of any picture.
  Classifier classifier(std::move(net), 32, stats, all->class_names());
  const ClassificationReport report = classifier.evaluate(val_set);
  std::cout << "validation top-1: " << 100 * report.metrics.top1_accuracy() << "%\n";
  return 0;
} catch (const std::exception& e) {
  std::cerr << "train_your_own: " << e.what() << "\n";
  return 1;
}
