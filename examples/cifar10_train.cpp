// Trains AlexNet on CIFAR-10 (what make train runs): the train program with CIFAR-10 as its dataset
// (--data DIR) and the recipe's defaults; see train_program.hpp and --help.
#include "train_program.hpp"

int main(int argc, char** argv) { return train_program::main("cifar10_train", argc, argv); }
