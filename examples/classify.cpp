// Classifies pictures with a checkpoint that `convnet train` wrote: the smallest program to copy.
//
//   classify runs/cifar10/best.ckpt cat.jpg ship.png ...
//
// Classifier::load rebuilds the network, the class names and the picture preparation from the
// checkpoint alone; predict fits any picture to the network's input as evaluation did in training.
#include <convnet/convnet.hpp>

#include <iostream>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: classify CHECKPOINT PICTURE...\n";
    return 1;
  }
  try {
    convnet::Classifier model = convnet::Classifier::load(argv[1]);
    for (int i = 2; i < argc; ++i) {
      const convnet::Image picture = convnet::decode_image(argv[i]);
      std::cout << argv[i] << ":";
      for (const convnet::ClassScore& c : model.predict(picture, 3)) {
        std::cout << "  " << c.name << " " << 100 * c.probability << "%";
      }
      std::cout << "\n";
    }
    return 0;
  } catch (const std::exception& e) {  // convnet's own errors are convnet::Error too; this takes std::bad_alloc as well
    std::cerr << "classify: " << e.what() << "\n";
    return 1;
  }
}
