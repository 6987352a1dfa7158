// A view of one trainable tensor and its gradient, as optimizers see it.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "tensor.hpp"

namespace convnet {

/// A parameter's name and shape alone: what a network will hold, before it is built.
struct ParameterShape {
  std::string name;
  std::vector<Index> shape;
};

template <class T>
struct Parameter {
  std::string name;          ///< "weight" or "bias"; containers prefix the layer name ("conv1.weight").
  std::vector<Index> shape;  ///< PyTorch's layout: conv [C_out, C_in/groups, kh, kw], dense [out, in], bias [C].
  T* value = nullptr;
  T* grad = nullptr;
  Index size = 0;
  bool weight_decay = true;  ///< false for biases: optimizers may skip decay where this is false.

  VectorMap<T> values() const { return VectorMap<T>(value, size); }
  VectorMap<T> grads() const { return VectorMap<T>(grad, size); }
};

/// A tensor that is part of a model but not trained (BatchNorm's running statistics): saved in
/// checkpoints beside the parameters, never given to an optimizer.
template <class T>
struct Buffer {
  std::string name;          ///< "running_mean"; containers prefix the layer name ("bn1.running_mean").
  std::vector<Index> shape;  ///< as PyTorch's state_dict holds it
  T* value = nullptr;
  Index size = 0;
};

/// Zero-filled storage for a parameter's gradient, whose memory the system commits
/// only where it is first written. calloc promises zeros, and for large blocks glibc
/// maps fresh pages instead of writing them, so a network that only ever runs forward
/// (a Classifier, inference) does not pay for its gradients: 250 MB for `paper`, as
/// much as its weights. PyTorch gets the same by allocating .grad on the first backward;
/// here the pointer exists from construction, so optimizers can hold it as before.
template <class T>
class GradientBuffer {
 public:
  GradientBuffer() = default;
  explicit GradientBuffer(Index size) : size_(size) {
    if (size == 0) return;
    // One cache line of slack so the data can start on a 64-byte boundary, as Eigen's own do.
    raw_ = std::calloc(static_cast<std::size_t>(size) * sizeof(T) + kAlign, 1);
    if (raw_ == nullptr) throw std::bad_alloc();
    const auto address = reinterpret_cast<std::uintptr_t>(raw_);
    data_ = reinterpret_cast<T*>((address + kAlign - 1) / kAlign * kAlign);
  }
  GradientBuffer(GradientBuffer&& other) noexcept { swap(other); }
  GradientBuffer& operator=(GradientBuffer&& other) noexcept {
    GradientBuffer(std::move(other)).swap(*this);
    return *this;
  }
  GradientBuffer(const GradientBuffer&) = delete;
  GradientBuffer& operator=(const GradientBuffer&) = delete;
  ~GradientBuffer() { std::free(raw_); }

  T* data() { return data_; }
  const T* data() const { return data_; }
  Index size() const { return size_; }
  VectorMap<T> vector() { return VectorMap<T>(data_, size_); }
  MatrixMap<T> matrix(Index rows, Index cols) { return MatrixMap<T>(data_, rows, cols); }

 private:
  static constexpr std::size_t kAlign = 64;
  void swap(GradientBuffer& other) noexcept {
    std::swap(raw_, other.raw_);
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
  }
  void* raw_ = nullptr;
  T* data_ = nullptr;
  Index size_ = 0;
};

}  // namespace convnet
