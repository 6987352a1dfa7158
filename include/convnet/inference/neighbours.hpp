// The paper's Figure 4: test pictures beside the training pictures whose vectors at a hidden layer
// (fc7's 4096 in the paper, after its ReLU) are nearest. Pictures are prepared as the classifier
// prepares them (the centre view) and run in evaluation mode. The training set is read a block at
// a time (one matrix product of the block against every query), and only the k best of each query
// are kept, so memory is queries x dimensions plus a block, whatever the training set's size.
//
//   auto found = nearest_neighbours(model, *data->test(), {0, 1, 2}, data->train(),
//                                   NeighbourOptions().layer("relu7").k(6));
//   draw_neighbours(found, *data->test(), data->train(), model.class_names()).save_png("n.png");
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "../data/dataset.hpp"
#include "../data/image.hpp"
#include "../errors.hpp"
#include "../tensor.hpp"
#include "activations.hpp"
#include "classifier.hpp"
#include "embedding_classifier.hpp"
#include "plot.hpp"

namespace convnet {

struct NeighbourOptions {
  /// The layer whose output is the vector compared (default "relu7": fc7 after its ReLU, as the paper).
  NeighbourOptions& layer(std::string v) { layer_ = std::move(v); return *this; }
  /// Neighbours kept per query, in [1, 100] (default 6, as the paper's figure).
  NeighbourOptions& k(Index v) { k_ = v; return *this; }
  /// Euclidean (the paper's) or cosine distance.
  NeighbourOptions& metric(EmbeddingMetric v) { metric_ = v; return *this; }
  /// Training pictures embedded a forward pass, in [1, 4096] (default 256).
  NeighbourOptions& block(Index v) { block_ = v; return *this; }

  const std::string& layer() const { return layer_; }
  Index k() const { return k_; }
  EmbeddingMetric metric() const { return metric_; }
  Index block() const { return block_; }

 private:
  std::string layer_ = "relu7";
  Index k_ = 6;
  EmbeddingMetric metric_ = EmbeddingMetric::Euclidean;
  Index block_ = 256;
};

struct Neighbour {
  Index index = 0;      ///< in the reference set
  int label = 0;
  double distance = 0;  ///< Euclidean, or 1 - cosine
};

struct QueryNeighbours {
  Index query = 0;  ///< in the query set
  int label = 0;
  std::vector<Neighbour> nearest;  ///< nearest first; ties by the lower index
};

/// What a search found, and how much of it shares the query's class.
struct NeighbourSearch {
  std::vector<QueryNeighbours> queries;
  Index references = 0;  ///< reference pictures compared
  Index skipped = 0;     ///< reference pictures that could not be read, left out

  /// The share of all neighbours found that have their query's class.
  double same_class_share() const {
    Index same = 0, all = 0;
    for (const auto& q : queries) {
      for (const auto& n : q.nearest) same += n.label == q.label ? 1 : 0;
      all += static_cast<Index>(q.nearest.size());
    }
    return all ? static_cast<double>(same) / static_cast<double>(all) : 0.0;
  }
};

namespace detail {

/// Embeds pictures through a classifier's centre view and one layer: rows [pictures, dimensions].
class PictureEmbedder {
 public:
  PictureEmbedder(Classifier& model, const std::string& layer) : model_(model), layer_(model.network().layer(layer)) {}

  Matrix<float> embed(const std::vector<Image>& pictures) {
    Matrix<float> rows;
    if (pictures.empty()) return rows;
    const Index n = static_cast<Index>(pictures.size());
    for (Index i = 0; i < n; ++i) {
      const Image view = model_.views(pictures[static_cast<std::size_t>(i)], EvalViews::Centre).front();
      if (i == 0) resize(batch_, Shape{n, view.channels, view.height, view.width});
      std::copy(view.pixels.begin(), view.pixels.end(), batch_.data() + i * static_cast<Index>(view.pixels.size()));
    }
    in_eval_mode(model_.network(), [&] { model_.network().forward(batch_); return 0; });
    const Tensor<float>& out = layer_.output();
    rows = ConstMatrixMap<float>(out.data(), n, out.size() / n);
    return rows;
  }

 private:
  Classifier& model_;
  const Layer<float>& layer_;
  Tensor<float> batch_;
};

inline void normalise_rows(Matrix<float>& m) {
  for (Index i = 0; i < m.rows(); ++i) {
    const float norm = m.row(i).norm();
    if (norm > 0) m.row(i) /= norm;
  }
}

}  // namespace detail

/// The options.k() nearest pictures of `reference` to each of `queries`' pictures `query_indices`.
inline NeighbourSearch nearest_neighbours(Classifier& model, const Dataset& queries, const std::vector<Index>& query_indices,
                                          const Dataset& reference, const NeighbourOptions& options = {}) {
  constexpr std::size_t kMaxQueries = 1000;
  detail::require_option(options.k() >= 1 && options.k() <= 100, "NeighbourOptions", "k", "in [1, 100]", options.k());
  detail::require_option(options.block() >= 1 && options.block() <= 4096, "NeighbourOptions", "block", "in [1, 4096]",
                         options.block());
  if (query_indices.empty() || query_indices.size() > kMaxQueries) {
    throw ArgumentError(detail::concat("nearest_neighbours: ", query_indices.size(), " queries; between 1 and ", kMaxQueries));
  }
  if (reference.size() == 0) throw ArgumentError("nearest_neighbours: the reference set is empty");
  detail::PictureEmbedder embedder(model, options.layer());
  NeighbourSearch search;
  std::vector<Image> pictures(query_indices.size());
  for (std::size_t i = 0; i < query_indices.size(); ++i) {
    queries.load(query_indices[i], pictures[i]);
    search.queries.push_back({query_indices[i], queries.label(query_indices[i]), {}});
  }
  // Queries embedded in blocks too: their rows are what is kept.
  Matrix<float> q;
  for (std::size_t start = 0; start < pictures.size(); start += static_cast<std::size_t>(options.block())) {
    const std::size_t end = std::min(pictures.size(), start + static_cast<std::size_t>(options.block()));
    const Matrix<float> rows = embedder.embed(std::vector<Image>(pictures.begin() + static_cast<long>(start), pictures.begin() + static_cast<long>(end)));
    if (start == 0) q.resize(static_cast<Index>(pictures.size()), rows.cols());
    q.middleRows(static_cast<Index>(start), rows.rows()) = rows;
  }
  pictures.clear();
  const bool cosine = options.metric() == EmbeddingMetric::Cosine;
  if (cosine) detail::normalise_rows(q);
  const Eigen::VectorXf q_norms = q.rowwise().squaredNorm();

  // Each query's best so far as (squared distance or 1 - cosine, index), sorted, at most k.
  std::vector<std::vector<std::pair<float, Index>>> best(static_cast<std::size_t>(q.rows()));
  std::vector<Index> indices;
  for (Index start = 0; start < reference.size(); start += options.block()) {
    const Index end = std::min(reference.size(), start + options.block());
    pictures.resize(static_cast<std::size_t>(end - start));
    indices.clear();
    std::size_t kept = 0;
    for (Index i = start; i < end; ++i) {
      try {
        reference.load(i, pictures[kept]);
      } catch (const DataError&) {
        ++search.skipped;
        continue;
      }
      indices.push_back(i);
      ++kept;
    }
    pictures.resize(kept);
    if (kept == 0) continue;
    Matrix<float> r = embedder.embed(pictures);
    if (r.cols() != q.cols()) throw StateError("nearest_neighbours: the embedding changed size between blocks");
    if (cosine) detail::normalise_rows(r);
    // [references, queries]: ||r||^2 + ||q||^2 - 2 r.q (one matrix product), or 1 - r.q.
    Eigen::MatrixXf d = -(r * q.transpose());
    if (cosine) {
      d.array() += 1.0f;
    } else {
      d *= 2.0f;
      d.colwise() += r.rowwise().squaredNorm();
      d.rowwise() += q_norms.transpose();
    }
    for (Index j = 0; j < d.cols(); ++j) {
      auto& list = best[static_cast<std::size_t>(j)];
      for (Index i = 0; i < d.rows(); ++i) {
        const std::pair<float, Index> candidate{std::max(0.0f, d(i, j)), indices[static_cast<std::size_t>(i)]};
        if (static_cast<Index>(list.size()) == options.k() && !(candidate < list.back())) continue;
        list.insert(std::upper_bound(list.begin(), list.end(), candidate), candidate);
        if (static_cast<Index>(list.size()) > options.k()) list.pop_back();
      }
    }
    search.references += static_cast<Index>(kept);
  }
  for (std::size_t j = 0; j < best.size(); ++j) {
    for (const auto& [distance, index] : best[j]) {
      search.queries[j].nearest.push_back({index, reference.label(index), cosine ? distance : std::sqrt(static_cast<double>(distance))});
    }
  }
  return search;
}

namespace detail {
constexpr Index kNeighbourMargin = 8, kNeighbourGap = 6, kNeighbourLine = 12, kNeighbourFrame = 3;
}  // namespace detail

/// Whether draw_neighbours can draw `queries` rows of `k` neighbours at `side` pixels: an
/// ArgumentError saying how many rows fit otherwise. Call it before the search, which is the work.
inline void require_neighbours_drawable(Index queries, Index k, Index side = 64) {
  using namespace detail;
  const double cell = static_cast<double>(side + 2 * kNeighbourFrame + kNeighbourGap);
  const double width = 2.0 * kNeighbourMargin + (static_cast<double>(k) + 1) * cell + 2 * kNeighbourGap;
  const double row = cell + kNeighbourLine, top = 2.0 * kNeighbourMargin + kNeighbourLine;
  const auto fit = static_cast<long long>(std::max(0.0, std::floor((Canvas::kMaxSide - top) / row)));
  Canvas::require_fits(width, top + static_cast<double>(queries) * row,
                       detail::concat(queries, " queries of ", k, " neighbours at ", side, " pixels (at most ", fit,
                                      " queries are drawn)"));
}

/// Figure 4: a row per query, the query (its class above it) then its neighbours, each framed green
/// when it has the query's class and red when not, pictures drawn `side` pixels square.
inline Canvas draw_neighbours(const NeighbourSearch& search, const Dataset& queries, const Dataset& reference,
                              const std::vector<std::string>& class_names, Index side = 64) {
  detail::require_option(side >= 8 && side <= 512, "draw_neighbours", "side", "in [8, 512]", side);
  constexpr Index kMargin = detail::kNeighbourMargin, kGap = detail::kNeighbourGap, kLine = detail::kNeighbourLine,
                  kFrame = detail::kNeighbourFrame;
  Index k = 0;
  for (const auto& q : search.queries) k = std::max<Index>(k, static_cast<Index>(q.nearest.size()));
  const Index cell = side + 2 * kFrame + kGap, rows = static_cast<Index>(search.queries.size());
  require_neighbours_drawable(rows, k, side);
  Canvas canvas(2 * kMargin + (k + 1) * cell + 2 * kGap, 2 * kMargin + kLine + rows * (cell + kLine));
  const Color black{0, 0, 0}, green{0, 160, 0}, red{210, 0, 0};
  auto name = [&](int label) {
    return label >= 0 && static_cast<std::size_t>(label) < class_names.size() ? class_names[static_cast<std::size_t>(label)]
                                                                               : detail::concat("class ", label);
  };
  canvas.text(kMargin, kMargin, "query, then its nearest training pictures (green: same class)", black);
  Image picture;
  for (Index r = 0; r < rows; ++r) {
    const QueryNeighbours& q = search.queries[static_cast<std::size_t>(r)];
    const Index y = kMargin + kLine + r * (cell + kLine);
    queries.load(q.query, picture);
    canvas.text(kMargin, y, name(q.label), black);
    canvas.draw_image(picture, kMargin + kFrame, y + kLine + kFrame, side, side);
    for (std::size_t n = 0; n < q.nearest.size(); ++n) {
      const Index x = kMargin + (static_cast<Index>(n) + 1) * cell + 2 * kGap;
      const bool same = q.nearest[n].label == q.label;
      canvas.text(x, y, name(q.nearest[n].label), same ? green : red);
      canvas.fill_rect(x, y + kLine, side + 2 * kFrame, side + 2 * kFrame, same ? green : red);
      reference.load(q.nearest[n].index, picture);
      canvas.draw_image(picture, x + kFrame, y + kLine + kFrame, side, side);
    }
  }
  return canvas;
}

}  // namespace convnet
