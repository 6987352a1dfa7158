// EmbeddingClassifier: classes from an embedding, for networks trained with a
// metric-learning loss (contrastive, triplet, ...) that has no softmax head to
// read. The training set's embeddings are the reference:
//   nearest centroid  the class whose mean embedding is closest
//   k nearest         the majority class of the k closest training embeddings
//                     (a tie goes to the tied class with the closest member)
// with Euclidean or cosine distance, as the loss measured it.
//
//   EmbeddingSet train = embed(net, train_loader, "relu7");   // eval mode, every batch
//   EmbeddingClassifier reference(train, EmbeddingMetric::Euclidean);
//   EmbeddingAccuracy a = reference.evaluate(embed(net, test_loader, "relu7"), {1, 10});
//   a.centroid, a.knn[0] (k = 1), a.knn[1] (k = 10)
#pragma once

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../data/loader.hpp"
#include "../errors.hpp"
#include "../models/sequential.hpp"
#include "../tensor.hpp"

namespace convnet {

enum class EmbeddingMetric { Euclidean, Cosine };

/// Embeddings as rows [N, D] with a class each.
struct EmbeddingSet {
  Matrix<float> rows;
  std::vector<int> labels;
  Index size() const { return rows.rows(); }
};

/// What the reference gives over a set: nearest-centroid accuracy and one k-NN accuracy per k asked.
struct EmbeddingAccuracy {
  double centroid = 0;
  std::vector<Index> k;
  std::vector<double> knn;
  Index count = 0;
};

/// The output of layer `layer` for every batch of an epoch of `loader` (call start_epoch first),
/// in evaluation mode (the network's mode is restored after). A layer's output of any shape is
/// flattened per picture; `max_batches` bounds the work.
template <class T>
EmbeddingSet embed(Sequential<T>& net, DataLoader& loader, const std::string& layer,
                   Index max_batches = Index{1} << 40) {
  const bool was_training = net.training();
  net.eval();
  EmbeddingSet set;
  std::vector<float> values;
  Index dim = 0, batches = 0;
  try {
    const Layer<T>& tap = net.layer(layer);
    Tensor<T> input;  // the batch as T when T is not float
    while (batches < max_batches) {
      const Batch* batch = loader.next();
      if (!batch) break;
      ++batches;
      if (batch->count() == 0) continue;
      net.forward(batch_images(*batch, input));
      const Tensor<T>& out = tap.output();
      const Index per = out.size() / out.dimension(0);
      if (dim != 0 && per != dim) throw StateError("embed: the embedding changed size between batches");
      if (dim == 0) {  // every row's room at once: growing by doubling would hold up to twice the rows
        const Index rows = std::min(max_batches, loader.batches_per_epoch()) * loader.options().batch_size();
        values.reserve(static_cast<std::size_t>(rows * per));
      }
      dim = per;
      for (Index i = 0; i < out.size(); ++i) values.push_back(static_cast<float>(out.data()[i]));
      set.labels.insert(set.labels.end(), batch->labels.begin(), batch->labels.end());
    }
  } catch (...) {
    net.set_training(was_training);
    throw;
  }
  net.set_training(was_training);
  const Index n = static_cast<Index>(set.labels.size());
  set.rows = n ? Matrix<float>(ConstMatrixMap<float>(values.data(), n, dim)) : Matrix<float>();
  return set;
}

class EmbeddingClassifier {
 public:
  EmbeddingClassifier(EmbeddingSet reference, EmbeddingMetric metric)
      : reference_(std::move(reference)), metric_(metric) {
    if (reference_.size() == 0) throw ArgumentError("EmbeddingClassifier: the reference set is empty");
    if (static_cast<Index>(reference_.labels.size()) != reference_.size()) {
      throw ShapeError("EmbeddingClassifier (labels)", detail::concat("[", reference_.size(), "]"),
                       detail::concat("[", reference_.labels.size(), "]"));
    }
    classes_ = 0;
    for (int label : reference_.labels) {
      if (label < 0) throw ArgumentError(detail::concat("EmbeddingClassifier: label ", label, " is negative"));
      classes_ = std::max<Index>(classes_, label + 1);
    }
    if (metric_ == EmbeddingMetric::Cosine) normalise_rows(reference_.rows);
    // Class means (of the normalised rows for cosine, then normalised: the mean direction).
    centroids_ = Matrix<float>::Zero(classes_, reference_.rows.cols());
    std::vector<Index> counts(static_cast<std::size_t>(classes_), 0);
    for (Index i = 0; i < reference_.size(); ++i) {
      const int c = reference_.labels[static_cast<std::size_t>(i)];
      centroids_.row(c) += reference_.rows.row(i);
      ++counts[static_cast<std::size_t>(c)];
    }
    for (Index c = 0; c < classes_; ++c) {
      if (counts[static_cast<std::size_t>(c)] > 0) centroids_.row(c) /= static_cast<float>(counts[static_cast<std::size_t>(c)]);
    }
    present_ = counts;
    if (metric_ == EmbeddingMetric::Cosine) normalise_rows(centroids_);
  }

  Index classes() const { return classes_; }
  EmbeddingMetric metric() const { return metric_; }

  /// The class whose centroid is closest to `embedding` (D values).
  int nearest_centroid(const float* embedding) const {
    Decisions d = classify(ConstMatrixMap<float>(embedding, 1, reference_.rows.cols()), {});
    return d.centroid.front();
  }

  /// The majority class of the k closest reference embeddings (k is capped at the reference's size).
  int nearest_neighbours(const float* embedding, Index k) const {
    Decisions d = classify(ConstMatrixMap<float>(embedding, 1, reference_.rows.cols()), {k});
    return d.knn.front().front();
  }

  /// Accuracy of both rules over `set` (its embeddings must have the reference's size).
  EmbeddingAccuracy evaluate(const EmbeddingSet& set, const std::vector<Index>& ks = {1, 10}) const {
    if (set.size() > 0 && set.rows.cols() != reference_.rows.cols()) {
      throw ShapeError("EmbeddingClassifier::evaluate", detail::concat("[N, ", reference_.rows.cols(), "]"),
                       detail::concat("[", set.size(), ", ", set.rows.cols(), "]"));
    }
    EmbeddingAccuracy a;
    a.k = ks;
    a.knn.assign(ks.size(), 0.0);
    a.count = set.size();
    if (set.size() == 0) return a;
    constexpr Index kBlock = 256;  // queries a product: the distances of a block are [reference, 256]
    for (Index start = 0; start < set.size(); start += kBlock) {
      const Index count = std::min(kBlock, set.size() - start);
      const Decisions d = classify(set.rows.middleRows(start, count), ks);
      for (Index i = 0; i < count; ++i) {
        const int truth = set.labels[static_cast<std::size_t>(start + i)];
        a.centroid += d.centroid[static_cast<std::size_t>(i)] == truth ? 1 : 0;
        for (std::size_t j = 0; j < ks.size(); ++j) a.knn[j] += d.knn[j][static_cast<std::size_t>(i)] == truth ? 1 : 0;
      }
    }
    a.centroid /= static_cast<double>(set.size());
    for (auto& v : a.knn) v /= static_cast<double>(set.size());
    return a;
  }

 private:
  static void normalise_rows(Matrix<float>& m) {
    for (Index i = 0; i < m.rows(); ++i) {
      const float norm = m.row(i).norm();
      if (norm > 0) m.row(i) /= norm;
    }
  }
  struct Decisions {
    std::vector<int> centroid;
    std::vector<std::vector<int>> knn;  // per k, per query
  };

  // Distances from each row of `from` to each row of `queries` (both prepared), as [from, queries]:
  // squared Euclidean through ||a||^2 + ||b||^2 - 2 a.b (one matrix product), or 1 - cosine.
  Eigen::MatrixXf distances(const Matrix<float>& from, const Matrix<float>& queries) const {
    Eigen::MatrixXf d = -(from * queries.transpose());
    if (metric_ == EmbeddingMetric::Cosine) return d.array() + 1.0f;
    d *= 2.0f;
    d.colwise() += from.rowwise().squaredNorm();                // [from, 1]
    d.rowwise() += queries.rowwise().squaredNorm().transpose();  // [1, queries]
    return d;
  }

  template <class Rows>
  Decisions classify(const Rows& rows, const std::vector<Index>& ks) const {
    for (Index k : ks) detail::require_option(k >= 1, "EmbeddingClassifier", "k", ">= 1", k);
    Matrix<float> queries = rows;
    if (metric_ == EmbeddingMetric::Cosine) normalise_rows(queries);
    Decisions out;
    const Eigen::MatrixXf to_centroids = distances(centroids_, queries);
    for (Index q = 0; q < queries.rows(); ++q) {
      int best = -1;
      for (Index c = 0; c < classes_; ++c) {
        if (present_[static_cast<std::size_t>(c)] == 0) continue;
        if (best < 0 || to_centroids(c, q) < to_centroids(best, q)) best = static_cast<int>(c);
      }
      out.centroid.push_back(best);
    }
    out.knn.assign(ks.size(), {});
    if (ks.empty()) return out;
    const Eigen::MatrixXf to_reference = distances(reference_.rows, queries);
    std::vector<std::pair<float, Index>> order(static_cast<std::size_t>(reference_.size()));
    std::vector<Index> votes(static_cast<std::size_t>(classes_));
    const Index deepest = std::min(*std::max_element(ks.begin(), ks.end()), reference_.size());
    for (Index q = 0; q < queries.rows(); ++q) {
      for (Index i = 0; i < reference_.size(); ++i) order[static_cast<std::size_t>(i)] = {to_reference(i, q), i};
      std::partial_sort(order.begin(), order.begin() + deepest, order.end());
      for (std::size_t j = 0; j < ks.size(); ++j) out.knn[j].push_back(vote(order, std::min(ks[j], reference_.size()), votes));
    }
    return out;
  }

  // The majority class of the first k of `order`; a tie goes to the tied class with the closest member.
  int vote(const std::vector<std::pair<float, Index>>& order, Index k, std::vector<Index>& votes) const {
    std::fill(votes.begin(), votes.end(), 0);
    for (Index i = 0; i < k; ++i) ++votes[static_cast<std::size_t>(label_of(order[static_cast<std::size_t>(i)].second))];
    const Index most = *std::max_element(votes.begin(), votes.end());
    for (Index i = 0; i < k; ++i) {
      const int c = label_of(order[static_cast<std::size_t>(i)].second);
      if (votes[static_cast<std::size_t>(c)] == most) return c;
    }
    return -1;  // unreachable: the first of the k has a class
  }
  int label_of(Index i) const { return reference_.labels[static_cast<std::size_t>(i)]; }

  EmbeddingSet reference_;
  EmbeddingMetric metric_;
  Index classes_ = 0;
  Matrix<float> centroids_;
  std::vector<Index> present_;
};

/// How well a set's embeddings separate its classes with no other reference: centroids from its
/// even-numbered rows classify its odd-numbered ones and back (nearest centroid, `metric`); the
/// number classified right. A validation figure for a loss on the embedding alone, whose softmax
/// head is untrained (TrainerOptions::validate_embedding). A half without rows classifies nothing.
inline Index split_half_centroid_correct(const EmbeddingSet& set, EmbeddingMetric metric) {
  EmbeddingSet halves[2];  // the even-numbered rows, the odd-numbered ones
  for (Index parity : {0, 1}) {
    const Index rows = (set.size() + 1 - parity) / 2;
    halves[parity].rows = set.rows(Eigen::seqN(parity, rows, 2), Eigen::all);
    for (Index i = 0; i < rows; ++i) halves[parity].labels.push_back(set.labels[static_cast<std::size_t>(2 * i + parity)]);
  }
  Index correct = 0;
  for (Index reference : {0, 1}) {
    const EmbeddingSet& queries = halves[1 - reference];
    if (halves[reference].size() == 0 || queries.size() == 0) continue;
    const EmbeddingAccuracy a = EmbeddingClassifier(halves[reference], metric).evaluate(queries, {});
    correct += static_cast<Index>(std::lround(a.centroid * static_cast<double>(queries.size())));
  }
  return correct;
}

}  // namespace convnet
