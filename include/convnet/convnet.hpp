// convnet: a header-only C++17 library for convolutional networks on Eigen and
// OpenMP, built around AlexNet. This umbrella header only includes; each
// concept lives in its own header and can be included on its own.
#pragma once

#include "errors.hpp"
#include "layer.hpp"
#include "layers/conv2d.hpp"
#include "layers/dense.hpp"
#include "layers/dropout.hpp"
#include "layers/flatten.hpp"
#include "layers/local_response_norm.hpp"
#include "layers/max_pool2d.hpp"
#include "layers/relu.hpp"
#include "layers/softmax.hpp"
#include "losses/softmax_cross_entropy.hpp"
#include "parameter.hpp"
#include "random.hpp"
#include "tensor.hpp"
#include "threading.hpp"
#include "version.hpp"
