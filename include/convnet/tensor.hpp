// The tensor types every layer exchanges, and their shape.
//
// Memory layout: NCHW (batch, channel, height, width), row-major, so the width
// index is contiguous. Why NCHW rather than NHWC:
//  - a convolution lowered to im2col multiplies the weight matrix
//    [C_out, C_in*kh*kw] by the column matrix [C_in*kh*kw, H_out*W_out]; the
//    product is [C_out, H_out*W_out], which *is* one image of the NCHW output,
//    written in place with no transpose;
//  - the weight layout [C_out, C_in, kh, kw] and the flatten order before the
//    dense layers are PyTorch's and Caffe's, so weights move between them as-is;
//  - local response normalisation runs across channels over whole H*W planes,
//    which in NCHW are contiguous vectors.
//
// Every activation is a rank-4 tensor, the outputs of dense layers included
// (N x F x 1 x 1): one tensor type flows through a Sequential network, and a
// shape mismatch is always reported in the same four numbers.
#pragma once

#include <unsupported/Eigen/CXX11/Tensor>

#include <Eigen/Core>
#include <array>
#include <string>

#include "errors.hpp"

namespace convnet {

using Index = Eigen::Index;

/// A dense NCHW tensor; row-major, so W varies fastest.
template <class T>
using Tensor = Eigen::Tensor<T, 4, Eigen::RowMajor, Index>;

/// Row-major matrix views used to hand tensor memory to Eigen's GEMM.
template <class T>
using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using MatrixMap = Eigen::Map<Matrix<T>>;
template <class T>
using ConstMatrixMap = Eigen::Map<const Matrix<T>>;
template <class T>
using Vector = Eigen::Matrix<T, Eigen::Dynamic, 1>;
template <class T>
using VectorMap = Eigen::Map<Vector<T>>;
template <class T>
using ConstVectorMap = Eigen::Map<const Vector<T>>;

/// The four extents of an NCHW tensor.
struct Shape {
  Index n = 0, c = 0, h = 0, w = 0;

  Index size() const { return n * c * h * w; }
  Index per_sample() const { return c * h * w; }
  Index plane() const { return h * w; }
  bool operator==(const Shape& o) const { return n == o.n && c == o.c && h == o.h && w == o.w; }
  bool operator!=(const Shape& o) const { return !(*this == o); }

  /// "[2, 3, 32, 32]" — always N, C, H, W.
  std::string str() const {
    return "[" + std::to_string(n) + ", " + std::to_string(c) + ", " + std::to_string(h) + ", " +
           std::to_string(w) + "]";
  }
};

template <class T>
Shape shape_of(const Tensor<T>& t) {
  return Shape{t.dimension(0), t.dimension(1), t.dimension(2), t.dimension(3)};
}

/// Gives `t` the shape `s`. Eigen keeps the buffer when the element count is
/// unchanged, so a training step reuses its activations without allocating.
template <class T>
void resize(Tensor<T>& t, const Shape& s) {
  if (shape_of(t) != s) t.resize(s.n, s.c, s.h, s.w);
}

template <class T>
Tensor<T> make_tensor(const Shape& s) {
  Tensor<T> t(s.n, s.c, s.h, s.w);
  return t;
}

/// The whole tensor as one contiguous vector.
template <class T>
VectorMap<T> flat(Tensor<T>& t) {
  return VectorMap<T>(t.data(), t.size());
}
template <class T>
ConstVectorMap<T> flat(const Tensor<T>& t) {
  return ConstVectorMap<T>(t.data(), t.size());
}

/// The tensor as a matrix of one row per sample: [N, C*H*W].
template <class T>
MatrixMap<T> rows_per_sample(Tensor<T>& t) {
  return MatrixMap<T>(t.data(), t.dimension(0), t.dimension(1) * t.dimension(2) * t.dimension(3));
}
template <class T>
ConstMatrixMap<T> rows_per_sample(const Tensor<T>& t) {
  return ConstMatrixMap<T>(t.data(), t.dimension(0), t.dimension(1) * t.dimension(2) * t.dimension(3));
}

/// Converts between scalar types (float <-> double), keeping the shape.
template <class To, class From>
Tensor<To> tensor_cast(const Tensor<From>& t) {
  Tensor<To> out = t.template cast<To>();
  return out;
}

}  // namespace convnet
