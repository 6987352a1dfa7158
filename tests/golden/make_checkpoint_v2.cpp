// Writes tests/golden/checkpoint_v2.ckpt: a trainer's last.ckpt as convnet wrote it at commit b8c20bb
// (before the one save/load pair; the Trainer's history as seven positional values an epoch), so
// that later versions are held to loading it. Kept as it was run: it compiles against that commit
// (and against a5046f6, which writes the same entries), not against later ones.
//   g++ -std=c++17 -O1 -fopenmp -Iinclude -I/usr/include/eigen3 tests/golden/make_checkpoint_v2.cpp -o /tmp/mk
//   /tmp/mk tests/golden/checkpoint_v2.ckpt
// The network: cifar-bn at width 1/16 on 16 x 16 pictures of three classes (BatchNorm buffers and
// dropout's random state included), SGD with Nesterov momentum, one-cycle, a weight average, two
// epochs of three batches. Beside the trainer's entries: golden/logits, the restored network's
// logits (evaluation mode) for a fixed input, and golden/average_logits, the weight average's.
#include <convnet/convnet.hpp>

#include <cstdio>
#include <filesystem>

using namespace convnet;

// 48 pictures 3 x 16 x 16 of three classes: class c is bright in channel c, with noise.
class Pictures : public Dataset {
 public:
  Pictures() {
    Rng rng(3);
    for (int i = 0; i < 48; ++i) {
      Image image(3, 16, 16);
      for (Index k = 0; k < 3 * 256; ++k) {
        image.pixels[static_cast<std::size_t>(k)] = static_cast<float>((k / 256 == i % 3 ? 150.0 : 60.0) + rng.uniform(-50, 50));
      }
      images_.push_back(image);
    }
  }
  Index size() const override { return 48; }
  int label(Index i) const override { return static_cast<int>(i % 3); }
  void load(Index i, Image& out) const override { out = images_[static_cast<std::size_t>(i)]; }
  const std::vector<std::string>& class_names() const override { return names_; }

 private:
  std::vector<Image> images_;
  std::vector<std::string> names_{"red", "green", "blue"};
};

Pipeline normalise() {
  Pipeline p;
  p.add<Normalize>(ChannelStats{{100, 100, 100}, {60, 60, 60}});
  return p;
}

int main(int argc, char** argv) {
  if (argc != 2) return 1;
  set_num_threads(1);
  Pictures data;
  AlexNetConfig config = AlexNetConfig::named("cifar-bn").width(0.0625).classes(3);
  config.input_size(16);
  auto net = make_alexnet<float>(config, 7);
  SoftmaxCrossEntropy<float> loss;
  Sgd<float> sgd(net.parameters(), SgdOptions(0.05).momentum(0.9).nesterov(true).weight_decay(5e-4));
  OneCycleLR schedule(OneCycleLROptions(0.05, 6));
  const std::string dir = std::filesystem::temp_directory_path() / "convnet_golden_v2";
  std::filesystem::remove_all(dir);
  DataLoader train(data, normalise(), LoaderOptions().batch_size(16).seed(3).workers(0));
  DataLoader val(data, normalise(), LoaderOptions().batch_size(16).shuffle(false).workers(0));
  Trainer<float> trainer(net, loss, sgd, &schedule,
                         TrainerOptions().epochs(2).checkpoint_dir(dir).average_weights(0.9));
  trainer.fit(train, &val);
  Checkpoint c = Checkpoint::load(trainer.last_path());
  Tensor<float> x(2, 3, 16, 16);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>((i * 37 % 101) - 50) / 50.0f;
  net.eval();
  const Tensor<float>& logits = net.forward(x);
  c.set_tensor<float>("golden/logits", {2, 3}, logits.data());
  {
    WeightAverage<float>::Swapped in(*const_cast<WeightAverage<float>*>(trainer.average()));
    const Tensor<float>& averaged = net.forward(x);
    c.set_tensor<float>("golden/average_logits", {2, 3}, averaged.data());
  }
  c.set_text("config", config.str());
  c.save(argv[1]);
  std::printf("wrote %s (%zu entries)\n", argv[1], c.entries().size());
  return 0;
}
