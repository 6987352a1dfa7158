// A user's program: include the umbrella header, build a small network and
// train it for a few steps through the library's Trainer. With a folder argument
// it keeps the trainer's checkpoints there and writes the trained network's logits
// for a fixed input (logits.txt, hexadecimal floats), which loader.cpp, a program
// without this network's code, must reproduce bit for bit.
#include <convnet/convnet.hpp>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>

namespace {

// Sixteen 8 x 8 pictures of two classes: class 1 is brighter.
class Pictures : public convnet::Dataset {
 public:
  convnet::Index size() const override { return 16; }
  int label(convnet::Index i) const override { return static_cast<int>(i % 2); }
  void load(convnet::Index i, convnet::Image& out) const override {
    out = convnet::Image(3, 8, 8, label(i) ? 200.0f : 50.0f);
  }
  const std::vector<std::string>& class_names() const override { return names_; }

 private:
  std::vector<std::string> names_{"dark", "bright"};
};

}  // namespace

int main(int argc, char** argv) {
  using namespace convnet;
  Sequential<float> net;
  net.add<Conv2d<float>>("conv", Conv2dOptions(3, 8, 3).padding(1));
  net.add<ReLU<float>>("relu");
  net.add<MaxPool2d<float>>("pool", MaxPool2dOptions(3).stride(2));
  net.add<Flatten<float>>("flatten");
  net.add<Dense<float>>("fc", DenseOptions(8 * 3 * 3, 2));

  Pictures data;
  Pipeline scale;
  scale.add<Normalize>(ChannelStats{{128, 128, 128}, {64, 64, 64}});
  DataLoader loader(data, scale, LoaderOptions().batch_size(4));
  SoftmaxCrossEntropy<float> loss;
  Sgd<float> sgd(net.parameters(), SgdOptions(0.05).momentum(0.9));
  TrainerOptions options = TrainerOptions().epochs(3);
  const std::string out = argc > 1 ? argv[1] : "";
  if (!out.empty()) {
    std::filesystem::create_directories(out);
    options.checkpoint_dir(out);
  }
  Trainer<float> trainer(net, loss, sgd, nullptr, options);
  trainer.fit(loader);

  if (!out.empty()) {  // the trained network's logits for the input loader.cpp also builds
    Tensor<float> x(2, 3, 8, 8);
    for (Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>((i * 37) % 256) / 255.0f;
    net.eval();
    const Tensor<float>& logits = net.forward(x);
    std::FILE* f = std::fopen((out + "/logits.txt").c_str(), "w");
    if (f == nullptr) return 1;
    for (Index i = 0; i < logits.size(); ++i) std::fprintf(f, "%a\n", static_cast<double>(logits.data()[i]));
    std::fclose(f);
  }

  std::cout << "convnet " << version << ": " << trainer.history().size() << " epochs, train loss "
            << trainer.history().front().train_loss << " -> " << trainer.history().back().train_loss << "\n";
#ifdef CONVNET_USE_OPENBLAS
  std::cout << "products: OpenBLAS\n";
#else
  std::cout << "products: Eigen\n";
#endif
  return trainer.history().size() == 3 && trainer.history().back().train_loss < trainer.history().front().train_loss
             ? 0
             : 1;
}
