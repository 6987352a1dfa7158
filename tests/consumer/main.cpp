// A user's program: include the umbrella header, build a small network, run it.
#include <convnet/convnet.hpp>

#include <iostream>

int main() {
  using namespace convnet;
  Conv2d<float> conv(Conv2dOptions(3, 8, 3).padding(1));
  ReLU<float> relu;
  MaxPool2d<float> pool(MaxPool2dOptions(3).stride(2));
  Flatten<float> flatten;
  Dense<float> dense(DenseOptions(8 * 3 * 3, 10));

  Tensor<float> x(2, 3, 8, 8);
  x.setConstant(0.5f);
  const Tensor<float>& y = dense.forward(flatten.forward(pool.forward(relu.forward(conv.forward(x)))));
  std::cout << "convnet " << version << ": output " << shape_of(y).str() << "\n";
#ifdef CONVNET_USE_OPENBLAS
  std::cout << "products: OpenBLAS\n";
#else
  std::cout << "products: Eigen\n";
#endif
  return shape_of(y) == Shape{2, 10, 1, 1} ? 0 : 1;
}
