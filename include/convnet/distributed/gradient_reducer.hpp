// GradientReducer: averages a network's parameter gradients over a
// ProcessGroup in buckets, each started as soon as backward has finished the
// layers it holds - PyTorch DDP's and Horovod's design.
//
// Buckets are cut from the parameters in reverse network order (backward's
// order), about `bucket_bytes` each (25 MB by default): for AlexNet fc8, fc7
// and fc6's 58 M parameters are being summed while the convolutions are still
// in backward. A parameter larger than a bucket is cut into several; small
// ones share one. A bucket of one piece is summed in place in the gradient;
// one of several pieces goes through its own staging buffer (allocated once).
// MPI moves a non-blocking sum only inside its own calls, so each finished
// layer also tests the sums in flight.
//
// Every process holds a slice of the global batch and its gradients are those
// of the mean over its slice; scaled by (its examples / all examples) and
// summed, they are the gradients of the global batch's mean, whatever the
// slices' sizes.
//
//   GradientReducer<float> reducer(net, group);
//   reducer.begin(local_examples / global_examples);
//   net.backward(...);          // the network's backward observer calls layer_done
//   reducer.finish();           // every gradient is now the global batch's
#pragma once

#include <algorithm>
#include <cstddef>
#include <stdexcept>
#include <vector>

#include "../errors.hpp"
#include "../parameter.hpp"
#include "../models/sequential.hpp"
#include "process_group.hpp"

namespace convnet {

/// A run of gradient values summed together: pieces of parameters, in the order they are packed.
struct GradientBucket {
  struct Piece {
    std::size_t parameter = 0;  ///< index into the network's parameters() (network order)
    Index offset = 0, count = 0;
  };
  std::vector<Piece> pieces;
  Index size = 0;                  ///< values in the bucket
  std::size_t first_layer = 0;     ///< the lowest layer it holds: complete once backward has finished it
};

/// One parameter as the planner sees it.
struct BucketedParameter {
  std::size_t layer = 0;  ///< its layer's index in the network
  Index size = 0;
};

/// Cuts `parameters` (network order) into buckets of at most `bucket_values`,
/// walking them last to first; every value lands in exactly one bucket.
inline std::vector<GradientBucket> plan_gradient_buckets(const std::vector<BucketedParameter>& parameters,
                                                         Index bucket_values) {
  detail::require_option(bucket_values >= 1, "plan_gradient_buckets", "bucket size", ">= 1 value", bucket_values);
  std::vector<GradientBucket> buckets;
  GradientBucket current;
  for (std::size_t p = parameters.size(); p-- > 0;) {
    for (Index offset = 0; offset < parameters[p].size;) {
      const Index count = std::min(parameters[p].size - offset, bucket_values - current.size);
      current.pieces.push_back({p, offset, count});
      current.size += count;
      current.first_layer = parameters[p].layer;  // walking down: the latest piece has the lowest layer
      offset += count;
      if (current.size == bucket_values) {
        buckets.push_back(std::move(current));
        current = GradientBucket();
      }
    }
  }
  if (current.size > 0) buckets.push_back(std::move(current));
  return buckets;
}

template <class T>
class GradientReducer {
 public:
  static constexpr Index kDefaultBucketBytes = Index{25} << 20;

  GradientReducer(Sequential<T>& net, ProcessGroup& group, Index bucket_bytes = kDefaultBucketBytes)
      : group_(group) {
    detail::require_option(bucket_bytes >= static_cast<Index>(sizeof(T)), "GradientReducer", "bucket_bytes",
                           ">= one value", bucket_bytes);
    std::vector<BucketedParameter> planned;
    for (std::size_t layer = 0; layer < net.size(); ++layer) {
      for (auto& p : net[layer].parameters()) {
        parameters_.push_back(p);
        planned.push_back({layer, p.size});
      }
    }
    buckets_ = plan_gradient_buckets(planned, bucket_bytes / static_cast<Index>(sizeof(T)));
    staging_.resize(buckets_.size());
    for (std::size_t b = 0; b < buckets_.size(); ++b) {
      if (buckets_[b].pieces.size() > 1) staging_[b].resize(buckets_[b].size);
    }
    requests_.resize(buckets_.size());
  }

  const std::vector<GradientBucket>& buckets() const { return buckets_; }

  /// Before backward: this process's share of the global batch (its examples over all of them).
  void begin(double share) {
    if (!(share >= 0.0 && share <= 1.0)) {
      throw ArgumentError(detail::concat("GradientReducer::begin: share ", share, " is not in [0, 1]"));
    }
    share_ = static_cast<T>(share);
    started_ = finished_ = 0;
    active_ = true;
  }

  /// Backward has finished layer `layer`: starts every bucket now complete and
  /// lets those in flight progress.
  void layer_done(std::size_t layer) {
    if (!active_) return;
    while (started_ < buckets_.size() && buckets_[started_].first_layer >= layer) start(started_++);
    while (finished_ < started_ && group_.test(requests_[finished_])) ++finished_;
  }

  /// After backward: starts what is left, waits for every sum and unpacks the staged ones.
  void finish() {
    if (!active_) throw StateError("GradientReducer::finish without begin");
    while (started_ < buckets_.size()) start(started_++);
    for (std::size_t b = 0; b < buckets_.size(); ++b) {
      if (b >= finished_) group_.wait(requests_[b]);
      if (staging_[b].size() == 0) continue;
      const T* from = staging_[b].data();
      for (const auto& piece : buckets_[b].pieces) {
        std::copy(from, from + piece.count, parameters_[piece.parameter].grad + piece.offset);
        from += piece.count;
      }
    }
    active_ = false;
  }

 private:
  void start(std::size_t b) {
    const GradientBucket& bucket = buckets_[b];
    if (staging_[b].size() == 0) {  // one piece: summed where it lies
      const auto& piece = bucket.pieces.front();
      VectorMap<T> grad(parameters_[piece.parameter].grad + piece.offset, piece.count);
      if (share_ != T(1)) grad *= share_;
      requests_[b] = group_.start_allreduce_sum(grad.data(), piece.count);
      return;
    }
    T* to = staging_[b].data();
    for (const auto& piece : bucket.pieces) {
      const ConstVectorMap<T> grad(parameters_[piece.parameter].grad + piece.offset, piece.count);
      VectorMap<T>(to, piece.count) = grad * share_;
      to += piece.count;
    }
    requests_[b] = group_.start_allreduce_sum(staging_[b].data(), bucket.size);
  }

  ProcessGroup& group_;
  std::vector<Parameter<T>> parameters_;
  std::vector<GradientBucket> buckets_;
  std::vector<Vector<T>> staging_;
  std::vector<ProcessGroup::Request> requests_;
  std::size_t started_ = 0, finished_ = 0;
  T share_ = T(1);
  bool active_ = false;
};

}  // namespace convnet
