// Trains AlexNet on any of the study's datasets or on a folder of pictures:
//   train --dataset cifar100:DIR | mnist:DIR | fashion-mnist:DIR | folder:DIR | cifar10:DIR [options]
// See train_program.hpp and --help.
#include "train_program.hpp"

int main(int argc, char** argv) { return train_program::main("train", argc, argv); }
