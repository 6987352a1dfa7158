// Winograd minimal filtering F(m x m, r x r) for stride-1 convolutions
// (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016),
// in all three passes of training.
//
// F(m, r) computes m outputs of an r-tap correlation from alpha = m + r - 1
// inputs with alpha multiplications instead of m * r:
//     y = AT [ (G g) .* (BT d) ]          (2-D: Y = AT [ (G g G^T) .* (BT d B) ] A)
// The matrices come from polynomial interpolation at the points
// 0, 1, -1, 2, -2, 1/2, -1/2 (as many as alpha - 1 needs) and infinity,
// built here at compile time (Toom-Cook):
//   AT (m x alpha)      evaluates a degree m-1 polynomial at the points (transposed),
//   G  (alpha x r)      evaluates the filter, divided by f_j = prod_{l!=j}(a_j - a_l),
//   BT (alpha x alpha)  row j: the coefficients of prod_{l!=j}(x - a_l); the last
//                       row those of prod_l (x - a_l).
// Correlation is the transpose of polynomial multiplication, which is why the
// evaluation matrix of the output sits in AT and the interpolation one in BT.
//
// The layers use F(4, 3) for 3 x 3 kernels (alpha 6: 36 products for 16
// outputs instead of 144) and F(4, 5) for 5 x 5 (alpha 8, points +-1/2 added:
// 64 for 16 instead of 400). The weight gradient is itself a correlation of
// the input with the output gradient as the filter, F(r, m): F(3, 4) and
// F(5, 4), with the same alpha and BT.
//
// A pass over a batch runs in blocks of tiles; for each block
//   1. transform: every (channel, tile) becomes alpha^2 numbers, stored as
//      alpha^2 matrices [channels x tiles] (vectorised over the tiles);
//   2. alpha^2 independent matrix products mix the channels (the arithmetic);
//   3. transform back and scatter into the output planes.
// Steps 1 and 3 run in parallel over channels, step 2 over the alpha^2
// products. The buffers (Workspace) only ever grow, so a steady-state step
// does not allocate; the layers share one set a thread (shared_workspace).
#pragma once

#include <algorithm>
#include <type_traits>
#include <vector>

#include "../errors.hpp"
#include "../tensor.hpp"
#include "../threading.hpp"
#include "gemm.hpp"
#include "gemm_bf16.hpp"

namespace convnet {
namespace winograd {

/// The matrices of F(M, R), alpha = M + R - 1 points, in double.
template <int M, int R>
struct Matrices {
  static constexpr int alpha = M + R - 1;
  static_assert(alpha >= 2 && alpha <= 8, "F(M, R) here has 2 <= alpha <= 8");
  double at[M][alpha] = {};
  double g[alpha][R] = {};
  double bt[alpha][alpha] = {};
};

template <int M, int R>
constexpr Matrices<M, R> make_matrices() {
  constexpr int kAlpha = M + R - 1, finite = kAlpha - 1;
  // The usual points, smallest first: the transforms' entries stay small.
  const double points[7] = {0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5};
  double a[finite] = {};
  for (int j = 0; j < finite; ++j) a[j] = points[j];
  Matrices<M, R> mat;
  for (int j = 0; j < finite; ++j) {
    double power = 1.0;
    for (int i = 0; i < M; ++i, power *= a[j]) mat.at[i][j] = power;
    double f = 1.0;
    for (int l = 0; l < finite; ++l) {
      if (l != j) f *= a[j] - a[l];
    }
    power = 1.0;
    for (int k = 0; k < R; ++k, power *= a[j]) mat.g[j][k] = power / f;
    // prod_{l != j} (x - a_l), coefficients from x^0 up.
    double poly[kAlpha] = {1.0};
    int degree = 0;
    for (int l = 0; l < finite; ++l) {
      if (l == j) continue;
      for (int t = degree + 1; t >= 1; --t) poly[t] = poly[t - 1] - a[l] * poly[t];
      poly[0] = -a[l] * poly[0];
      ++degree;
    }
    for (int t = 0; t < kAlpha; ++t) mat.bt[j][t] = poly[t];
  }
  mat.at[M - 1][finite] = 1.0;
  mat.g[finite][R - 1] = 1.0;
  double poly[kAlpha] = {1.0};
  for (int l = 0; l < finite; ++l) {
    for (int t = l + 1; t >= 1; --t) poly[t] = poly[t - 1] - a[l] * poly[t];
    poly[0] = -a[l] * poly[0];
  }
  for (int t = 0; t < kAlpha; ++t) mat.bt[finite][t] = poly[t];
  return mat;
}

/// Whether Winograd can run this convolution: stride 1, a 3 x 3 or 5 x 5
/// kernel, and padding the input gradient can mirror (at most kernel - 1).
inline bool supports(Index kernel, Index stride, Index padding) {
  return stride == 1 && (kernel == 3 || kernel == 5) && padding >= 0 && padding <= kernel - 1;
}

/// One convolution's geometry: a batch of images, one group's channels.
/// Channel c of image n starts at data + n * image_stride + c * plane.
struct Geometry {
  Index batch = 0, in_channels = 0, out_channels = 0;
  Index height = 0, width = 0, out_height = 0, out_width = 0, padding = 0;
  Index in_image_stride = 0, out_image_stride = 0;
};

namespace detail {
/// Where a tile's Side x Side window starts: image, row, column, and whether
/// it lies wholly inside the plane. Worked out once a block for every channel.
struct TileOrigin {
  Index image, y0, x0;
  bool inside;
};

}  // namespace detail

/// Buffers a layer keeps between calls (grow-only).
template <class T>
struct Workspace {
  std::vector<T> weights;        // transformed weights, alpha^2 x [rows x cols]
  std::vector<T> data;           // transformed input block, alpha^2 x [channels x tiles]
  std::vector<T> products;       // alpha^2 x [out channels x tiles]
  std::vector<T> accumulator;    // weight gradient in the transformed domain
  std::vector<std::vector<T>> scratch;  // per thread: one channel's tiles
  std::vector<detail::TileOrigin> in_origins, out_origins;  // of the block's tiles

  static void grow(std::vector<T>& v, Index size) {
    if (static_cast<Index>(v.size()) < size) v.resize(static_cast<std::size_t>(size));
  }
  T* thread_scratch(int thread, Index size) {
    if (static_cast<int>(scratch.size()) <= thread) throw StateError("winograd: scratch not prepared");
    grow(scratch[static_cast<std::size_t>(thread)], size);
    return scratch[static_cast<std::size_t>(thread)].data();
  }
  /// Sizes the buffers of a pass in blocks of `block` tiles with `points` = alpha^2.
  void prepare_blocks(Index points, Index in_channels, Index out_channels, Index block) {
    grow(data, points * in_channels * block);
    grow(products, points * out_channels * block);
    prepare_scratch(3 * points * block);
  }
  void prepare_scratch(Index size) {
    if (static_cast<int>(scratch.size()) < num_threads()) scratch.resize(static_cast<std::size_t>(num_threads()));
    for (auto& s : scratch) grow(s, size);
  }
};

/// The workspace every Winograd convolution of the calling thread shares: a
/// layer needs it only during its own call, so a network holds one set of
/// buffers (the largest layer's) instead of one per layer.
template <class T>
Workspace<T>& shared_workspace() {
  thread_local Workspace<T> workspace;
  return workspace;
}

namespace detail {

/// Tiles of m x m outputs over one image, and in total.
struct Tiling {
  Index m, rows, cols, per_image, total;
  Tiling(Index tile, Index out_h, Index out_w, Index batch)
      : m(tile), rows((out_h + tile - 1) / tile), cols((out_w + tile - 1) / tile), per_image(rows * cols),
        total(rows * cols * batch) {}
};

/// Tiles per block: enough columns for an efficient product, few enough that a
/// block's transformed data stays near the cache.
inline Index block_tiles(const Tiling& tiling) { return std::min<Index>(tiling.total, 128); }

/// out[i][t] = sum_j mat[i][j] * in[j][t] for t < count, rows of `stride`,
/// in one pass over each output row (the sum over j stays in registers).
template <int Rows, int Cols, class T>
inline void apply_rows(const double (&mat)[Rows][Cols], const T* in, Index in_stride, T* out, Index out_stride,
                       Index count) {
  for (int i = 0; i < Rows; ++i) {
    T c[Cols];
    for (int j = 0; j < Cols; ++j) c[j] = static_cast<T>(mat[i][j]);
    T* o = out + i * out_stride;
#pragma omp simd
    for (Index t = 0; t < count; ++t) {
      T s = c[0] * in[t];
      for (int j = 1; j < Cols; ++j) s += c[j] * in[j * in_stride + t];
      o[t] = s;
    }
  }
}

/// Two-sided transform of `count` tiles stored as [Side][Side][count]:
/// out[p][q] = sum_{i,j} L[p][i] L[q][j] in[i][j], out as [Out][Out][count] with
/// plane stride `out_stride` between (p, q) pairs. `temp` holds Out*Side*count.
template <int Out, int Side, class T>
void transform_tiles(const double (&mat)[Out][Side], const T* in, T* temp, T* out, Index out_stride, Index count) {
  // Along the rows first: temp[p][j] = sum_i L[p][i] in[i][j].
  apply_rows<Out, Side>(mat, in, Side * count, temp, Side * count, Side * count);
  // Then along the columns of each: out[p][q] = sum_j L[q][j] temp[p][j].
  for (int p = 0; p < Out; ++p) apply_rows<Out, Side>(mat, temp + p * Side * count, count, out + p * Out * out_stride,
                                                     out_stride, count);
}

/// Origins of tiles [first, first + count): tile (ty, tx) of an image starts
/// at (ty * m - offset, tx * m - offset).
inline void tile_origins(const Tiling& tiling, Index side, Index offset, Index h, Index w, Index first, Index count,
                         std::vector<TileOrigin>& origins) {
  if (static_cast<Index>(origins.size()) < count) origins.resize(static_cast<std::size_t>(count));
  for (Index t = 0; t < count; ++t) {
    const Index index = first + t, in_image = index % tiling.per_image;
    TileOrigin& o = origins[static_cast<std::size_t>(t)];
    o.image = index / tiling.per_image;
    o.y0 = (in_image / tiling.cols) * tiling.m - offset;
    o.x0 = (in_image % tiling.cols) * tiling.m - offset;
    o.inside = o.y0 >= 0 && o.x0 >= 0 && o.y0 + side <= h && o.x0 + side <= w;
  }
}

/// Copies the Side x Side windows of `count` tiles of one channel into
/// tiles[i][j][t], zero outside the plane.
template <int Side, class T>
void gather_tiles(const T* channel0, Index image_stride, Index h, Index w, const TileOrigin* origins, Index count,
                  T* tiles) {
  for (Index t = 0; t < count; ++t) {
    const TileOrigin& o = origins[t];
    const T* plane = channel0 + o.image * image_stride;
    T* dst = tiles + t;
    if (o.inside) {
      const T* src = plane + o.y0 * w + o.x0;
      for (int i = 0; i < Side; ++i) {
        for (int j = 0; j < Side; ++j) dst[(i * Side + j) * count] = src[i * w + j];
      }
      continue;
    }
    for (int i = 0; i < Side; ++i) {
      const Index y = o.y0 + i;
      for (int j = 0; j < Side; ++j) {
        const Index x = o.x0 + j;
        dst[(i * Side + j) * count] = (y >= 0 && y < h && x >= 0 && x < w) ? plane[y * w + x] : T(0);
      }
    }
  }
}

/// The other way for outputs: writes tiles[i][j][t] + bias into the M x M
/// tiles of one output channel, leaving out what falls outside the plane.
template <int M, class T>
void scatter_tiles(const T* tiles, const TileOrigin* origins, Index count, T bias, T* channel0, Index image_stride,
                   Index h, Index w) {
  for (Index t = 0; t < count; ++t) {
    const TileOrigin& o = origins[t];
    T* dst = channel0 + o.image * image_stride + o.y0 * w + o.x0;
    const T* src = tiles + t;
    const Index rows = o.inside ? M : std::min<Index>(M, h - o.y0), cols = o.inside ? M : std::min<Index>(M, w - o.x0);
    for (Index i = 0; i < rows; ++i) {
      for (Index j = 0; j < cols; ++j) dst[i * w + j] = src[(i * M + j) * count] + bias;
    }
  }
}

/// The first step of a block: the origins of its tiles (input windows and
/// output tiles, for every channel), then each input channel's windows d
/// through BT d B into ws.data as [alpha^2][channels][count].
template <int Alpha, class T>
void transform_input_block(const Geometry& geo, const T* in, const Tiling& tiling, const double (&bt)[Alpha][Alpha],
                           Index first, Index count, Workspace<T>& ws) {
  constexpr int kPoints = Alpha * Alpha;
  const Index cin = geo.in_channels, in_plane = geo.height * geo.width;
  tile_origins(tiling, Alpha, geo.padding, geo.height, geo.width, first, count, ws.in_origins);
  tile_origins(tiling, tiling.m, 0, geo.out_height, geo.out_width, first, count, ws.out_origins);
  T* data = ws.data.data();
  ::convnet::detail::parallel_for(cin, true, [&](Index c, int thread) {
    T* tiles = ws.thread_scratch(thread, 2 * kPoints * count);
    gather_tiles<Alpha>(in + c * in_plane, geo.in_image_stride, geo.height, geo.width, ws.in_origins.data(), count,
                        tiles);
    transform_tiles<Alpha, Alpha>(bt, tiles, tiles + kPoints * count, data + c * count, cin * count, count);
  });
}

}  // namespace detail

/// Transformed weights for the forward pass: U[xi][k][c] = (G w[k][c] G^T)[xi],
/// w as [out_channels][in_channels][R][R] (one group). With `flip`, the input
/// gradient's weights instead: U[xi][c][k] from w[k][c] rotated by 180 degrees.
/// Each output row (k, or c with flip) is one vectorised transform of its
/// filters laid out as [R][R][filters].
template <int M, int R, class T>
void transform_weights(const T* w, Index out_channels, Index in_channels, bool flip, T* u, Workspace<T>& ws) {
  static constexpr Matrices<M, R> mat = make_matrices<M, R>();
  constexpr int kAlpha = M + R - 1;
  const Index rows = flip ? in_channels : out_channels, cols = flip ? out_channels : in_channels;
  ws.prepare_scratch((R * R + kAlpha * R) * cols);
  ::convnet::detail::parallel_for(rows, rows * cols * R * R > 4096, [&](Index row, int thread) {
    T* filters = ws.thread_scratch(thread, (R * R + kAlpha * R) * cols);
    for (Index col = 0; col < cols; ++col) {
      const Index k = flip ? col : row, c = flip ? row : col;
      const T* f = w + (k * in_channels + c) * R * R;
      for (int i = 0; i < R * R; ++i) filters[i * cols + col] = flip ? f[R * R - 1 - i] : f[i];
    }
    detail::transform_tiles<kAlpha, R>(mat.g, filters, filters + R * R * cols, u + row * cols, rows * cols, cols);
  });
}

/// The transformed weights `u` (`points` matrices of rows x cols) packed for bf16 products.
inline void pack_points(const float* u, Index points, Index rows, Index cols, std::vector<PackedBf16Matrix>& packed) {
  if (static_cast<Index>(packed.size()) < points) packed.resize(static_cast<std::size_t>(points));
  ::convnet::detail::parallel_for(points, !in_parallel_region(), [&](Index xi, int) {
    packed[static_cast<std::size_t>(xi)].pack(Transpose::No, rows, cols, u + xi * rows * cols, cols);
  });
}

/// out = correlation of `in` with the transformed weights `u` (alpha^2 x
/// [out_channels x in_channels]), stride 1, through F(M, R); adds `bias`
/// (out_channels values) when given. Overwrites the output planes. With
/// `packed_u` (alpha^2 matrices, u's packed by pack_points), the products mix
/// the channels in bf16 (kernels/gemm_bf16.hpp); the transforms stay fp32.
template <int M, int R, class T>
void correlate(const Geometry& geo, const T* in, const T* u, const T* bias, T* out, Workspace<T>& ws,
               const PackedBf16Matrix* packed_u = nullptr) {
  static constexpr Matrices<M, R> mat = make_matrices<M, R>();
  constexpr int kAlpha = M + R - 1, kPoints = kAlpha * kAlpha;
  const detail::Tiling tiling(M, geo.out_height, geo.out_width, geo.batch);
  const Index block = detail::block_tiles(tiling), cin = geo.in_channels, cout = geo.out_channels;
  ws.prepare_blocks(kPoints, cin, cout, block);
  const Index out_plane = geo.out_height * geo.out_width;
  for (Index first = 0; first < tiling.total; first += block) {
    const Index count = std::min(block, tiling.total - first);
    T* data = ws.data.data();
    T* products = ws.products.data();
    detail::transform_input_block(geo, in, tiling, mat.bt, first, count, ws);
    ::convnet::detail::parallel_for(kPoints, true, [&](Index xi, int) {
      if constexpr (std::is_same_v<T, float>) {
        if (packed_u != nullptr) {
          packed_u[xi].multiply(Transpose::No, count, 1.0f, data + xi * cin * count, count, 0.0f,
                                products + xi * cout * count, count);
          return;
        }
      }
      gemm(Transpose::No, Transpose::No, cout, count, cin, T(1), u + xi * cout * cin, cin, data + xi * cin * count,
           count, T(0), products + xi * cout * count, count);
    });
    ::convnet::detail::parallel_for(cout, true, [&](Index k, int thread) {
      T* tile_out = ws.thread_scratch(thread, 3 * kPoints * block);
      T* temp = tile_out + M * M * count;
      // Gather this channel's alpha^2 rows (stride cout * count) into [alpha][alpha][count].
      T* gathered = temp + M * kAlpha * count;
      for (int xi = 0; xi < kPoints; ++xi) {
        std::copy(products + (xi * cout + k) * count, products + (xi * cout + k + 1) * count, gathered + xi * count);
      }
      detail::transform_tiles<M, kAlpha>(mat.at, gathered, temp, tile_out, count, count);
      detail::scatter_tiles<M>(tile_out, ws.out_origins.data(), count, bias ? bias[k] : T(0), out + k * out_plane,
                               geo.out_image_stride, geo.out_height, geo.out_width);
    });
  }
}

/// Weight gradient: dw[k][c] += sum over the batch of the correlation of input
/// channel c with output-gradient channel k, through F(R, M) (the output
/// gradient's M x M tiles as the filter). dw as [out][in][R][R] (one group).
/// With `bf16`, the products in the transformed domain take bf16 operands (fp32 sums).
template <int M, int R, class T>
void weight_gradient(const Geometry& geo, const T* in, const T* grad_out, T* dw, Workspace<T>& ws, bool bf16 = false) {
  static constexpr Matrices<R, M> mat = make_matrices<R, M>();
  constexpr int kAlpha = M + R - 1, kPoints = kAlpha * kAlpha;
  const detail::Tiling tiling(M, geo.out_height, geo.out_width, geo.batch);
  const Index block = detail::block_tiles(tiling), cin = geo.in_channels, cout = geo.out_channels;
  ws.prepare_blocks(kPoints, cin, cout, block);
  Workspace<T>::grow(ws.accumulator, kPoints * cout * cin);
  const Index out_plane = geo.out_height * geo.out_width;
  T* acc = ws.accumulator.data();
  for (Index first = 0; first < tiling.total; first += block) {
    const Index count = std::min(block, tiling.total - first);
    T* data = ws.data.data();
    T* grads = ws.products.data();
    detail::transform_input_block(geo, in, tiling, mat.bt, first, count, ws);
    ::convnet::detail::parallel_for(cout, true, [&](Index k, int thread) {
      T* tiles = ws.thread_scratch(thread, 3 * kPoints * block);
      detail::gather_tiles<M>(grad_out + k * out_plane, geo.out_image_stride, geo.out_height, geo.out_width,
                              ws.out_origins.data(), count, tiles);
      detail::transform_tiles<kAlpha, M>(mat.g, tiles, tiles + M * M * count, grads + k * count, cout * count,
                                         count);
    });
    ::convnet::detail::parallel_for(kPoints, true, [&](Index xi, int) {
      // The first block overwrites the accumulator, the others add to it.
      if constexpr (std::is_same_v<T, float>) {
        if (bf16) {
          gemm_bf16(Transpose::No, Transpose::Yes, cout, cin, count, 1.0f, grads + xi * cout * count, count,
                    data + xi * cin * count, count, first == 0 ? 0.0f : 1.0f, acc + xi * cout * cin, cin);
          return;
        }
      }
      gemm(Transpose::No, Transpose::Yes, cout, cin, count, T(1), grads + xi * cout * count, count,
           data + xi * cin * count, count, first == 0 ? T(0) : T(1), acc + xi * cout * cin, cin);
    });
  }
  // Back from the transformed domain: dw[k][c] += AT acc[.][k][c] A.
  const Index pairs = cout * cin;
  ::convnet::detail::parallel_for(cout, true, [&](Index k, int) {
    for (Index c = 0; c < cin; ++c) {
      double half[R][kAlpha] = {};
      for (int p = 0; p < R; ++p) {
        for (int i = 0; i < kAlpha; ++i) {
          const double a = mat.at[p][i];
          if (a == 0) continue;
          for (int j = 0; j < kAlpha; ++j) half[p][j] += a * acc[(i * kAlpha + j) * pairs + k * cin + c];
        }
      }
      T* f = dw + (k * cin + c) * R * R;
      for (int p = 0; p < R; ++p) {
        for (int q = 0; q < R; ++q) {
          double s = 0;
          for (int j = 0; j < kAlpha; ++j) s += half[p][j] * mat.at[q][j];
          f[p * R + q] += static_cast<T>(s);
        }
      }
    }
  });
}

}  // namespace winograd
}  // namespace convnet
