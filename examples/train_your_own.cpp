// Your own network, trained with the library's Trainer: the program to copy.
//
//   train_your_own --dataset cifar10:DIR [--epochs 3] [--out runs/mine]
//   train_your_own --dataset folder:DIR      (DIR/<class>/<picture>, any size: fitted to 32 x 32)
//   (or cifar100:DIR, mnist:DIR, fashion-mnist:DIR: grey pictures are replicated to RGB)
//   mpirun -np 2 train_your_own --dataset ... --threads 1   (built with MPI: data-parallel)
#include <convnet/convnet.hpp>
#ifdef CONVNET_WITH_MPI
#include <convnet/distributed/mpi.hpp>
#endif

#include <iostream>
#include <memory>

using namespace convnet;

int main(int argc, char** argv) {
#ifdef CONVNET_WITH_MPI
  mpi::World world(argc, argv);  // started by mpirun: the ranks train one model together
  ProcessGroup* group = world.group();
#else
  ProcessGroup* group = nullptr;
#endif
  const bool root = group == nullptr || group->rank() == 0;
  try {
    std::string dataset, out = "runs/mine";
    long epochs = 3, batch_size = 64, max_batches = 0, threads = 0;
    bool help = false;
    cli::OptionTable table("usage: train_your_own --dataset KIND:DIR [options]\n",
                           {{"options",
                             {{"--dataset", "KIND:DIR", "cifar10, cifar100, mnist, fashion-mnist or folder (DIR/<class>/...)", &dataset},
                              {"--epochs", "N", "epochs to train", &epochs},
                              {"--batch-size", "N", "pictures per step", &batch_size},
                              {"--max-batches", "N", "batches per epoch (0: all)", &max_batches},
                              {"--out", "DIR", "where last.ckpt and best.ckpt go", &out},
                              {"--threads", "N", "compute threads (0: all cores; 1 a rank under mpirun)", &threads},
                              {"--help", "", "this text", &help}}}});
    table.parse(argc, argv);
    if (threads > 0) set_num_threads(static_cast<int>(threads));
    if (help || dataset.empty()) {
      table.print_usage(help ? std::cout : std::cerr);
      return help ? 0 : 1;
    }

    // The data: any dataset by name with its validation part, and pictures prepared as for CIFAR
    // (fitted to 32 x 32 RGB, padded crops and flips for training, per-channel normalisation).
    const auto data = TrainingData::open(DatasetSpec::parse(dataset), TrainingDataOptions().validation_fraction(0.1));
    const Preparation prep = Preparation::compute(
        data->train(), PreparationOptions().input_size(32).channels(3).augment("crop,flip").statistics_sample(5000));
    DataLoader train_loader(data->train(), prep.train_pipeline(),
                            LoaderOptions().batch_size(batch_size).skip_unreadable(true));
    DataLoader val_loader(data->validation(), prep.eval_pipeline(),
                          LoaderOptions().batch_size(256).shuffle(false).skip_unreadable(true));
    if (root) std::cout << data->describe() << "\n";

    // The network: two convolutions and a classifier.
    Sequential<float> net;
    net.add<Conv2d<float>>("conv1", Conv2dOptions(3, 32, 3).padding(1));
    net.add<ReLU<float>>("relu1");
    net.add<MaxPool2d<float>>("pool1", MaxPool2dOptions(2));
    net.add<Conv2d<float>>("conv2", Conv2dOptions(32, 64, 3).padding(1));
    net.add<ReLU<float>>("relu2");
    net.add<MaxPool2d<float>>("pool2", MaxPool2dOptions(2));
    net.add<Flatten<float>>("flatten");
    net.add<Dense<float>>("fc", DenseOptions(64 * 8 * 8, static_cast<Index>(data->class_names().size())));

    // The training: cross-entropy, SGD with Nesterov momentum, one-cycle learning rate.
    SoftmaxCrossEntropy<float> loss;
    Sgd<float> sgd(net.parameters(), SgdOptions(0.05).momentum(0.9).nesterov(true).weight_decay(5e-4));
    const Index batches = max_batches > 0 ? std::min<Index>(max_batches, train_loader.batches_per_epoch())
                                          : train_loader.batches_per_epoch();
    OneCycleLR schedule(OneCycleLROptions(0.05, epochs * batches));
    TrainerOptions options = TrainerOptions().epochs(epochs).checkpoint_dir(out);
    if (max_batches > 0) options.max_batches(max_batches);
    Trainer<float> trainer(net, loss, sgd, &schedule, options);
    // The checkpoints also say how pictures are prepared and what the classes are called, so
    // `convnet predict --checkpoint OUT/best.ckpt` (or Classifier::load) uses the network as it is.
    CheckpointNotes notes;
    notes.writer([&prep](Checkpoint& c) { prep.save(c); }).lines("data/classes", data->class_names());
    trainer.add_callback(notes);
    ProgressPrinter progress(std::cout, std::cerr);
    if (root) trainer.add_callback(progress);
    if (group) trainer.distribute(*group);  // same weights, a slice of every batch each, gradients summed
    trainer.fit(train_loader, &val_loader);
    if (!root) return 0;

    // The trained network as a classifier of any picture, prepared as in training; evaluated on the
    // centre view and on the centre and its mirror.
    Classifier classifier(std::move(net), prep, data->class_names());
    for (EvalViews views : {EvalViews::Centre, EvalViews::Flip}) {
      const ClassificationReport report = classifier.evaluate(data->validation(), views);
      std::cout << "validation top-1 (" << to_string(views) << "): " << 100 * report.metrics.top1_accuracy() << "%\n";
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "train_your_own: " << e.what() << std::endl;
#ifdef CONVNET_WITH_MPI
    world.abort_job();
#endif
    return 1;
  }
}
