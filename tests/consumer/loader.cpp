// A program without the network's code: it includes the loader's header alone, rebuilds the network
// main.cpp trained from that run's last.ckpt, and checks that its logits for the same input are
// the ones main.cpp wrote, bit for bit.
//
//   loader DIR      (DIR: the folder main.cpp was given)
#include <convnet/models/saved_network.hpp>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  using namespace convnet;
  if (argc != 2) {
    std::fprintf(stderr, "usage: loader DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  try {
    Sequential<float> net = load_network<float>(dir + "/last.ckpt");
    Tensor<float> x(2, 3, 8, 8);
    for (Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>((i * 37) % 256) / 255.0f;
    const Tensor<float>& logits = net.forward(x);

    std::vector<float> expected;
    std::FILE* f = std::fopen((dir + "/logits.txt").c_str(), "r");
    if (f == nullptr) throw std::runtime_error("cannot open " + dir + "/logits.txt");
    for (char line[128]; std::fgets(line, sizeof line, f) != nullptr;) expected.push_back(std::strtof(line, nullptr));
    std::fclose(f);
    if (static_cast<Index>(expected.size()) != logits.size()) {
      std::fprintf(stderr, "loader: %zu logits written, %ld computed\n", expected.size(), static_cast<long>(logits.size()));
      return 1;
    }
    for (Index i = 0; i < logits.size(); ++i) {
      if (logits.data()[i] != expected[static_cast<std::size_t>(i)]) {
        std::fprintf(stderr, "loader: logit %ld is %a, the trainer's %a\n", static_cast<long>(i),
                     static_cast<double>(logits.data()[i]), static_cast<double>(expected[static_cast<std::size_t>(i)]));
        return 1;
      }
    }
    std::printf("loader: %zu layers rebuilt from %s/last.ckpt; %ld logits bit for bit\n", net.size(), dir.c_str(),
                static_cast<long>(logits.size()));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loader: %s\n", e.what());
    return 1;
  }
}
