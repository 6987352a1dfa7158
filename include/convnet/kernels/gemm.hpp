// Matrix products for the layers: C = alpha * op(A) * op(B) + beta * C on
// row-major matrices, through Eigen's GEMM kernel (gebp) with workspaces
// that live as long as the thread.
//
// Why not `C.noalias() = A * B` on Eigen maps: for large products Eigen packs
// its operands into blocks it allocates on the heap on every call, once per
// thread in its parallel path. A training step does dozens of products, so
// it would never be allocation-free. Here each thread keeps its packing
// buffers (grow-only) and reuses them, and this file splits the output
// between threads itself: contiguous blocks of C, each computed by the
// sequential kernel. Inside an OpenMP region (a layer already parallel over
// the batch) the product runs on the calling thread alone.
//
// With CONVNET_USE_OPENBLAS defined (CMake: -DCONVNET_BLAS=openblas, which
// links Debian's OpenMP build of OpenBLAS), products go to cblas_sgemm /
// cblas_dgemm instead. That build runs single-threaded when called inside an
// OpenMP region and on all threads otherwise, as the Eigen path does.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <stdexcept>
#include <type_traits>
#include <vector>

#ifdef CONVNET_USE_OPENBLAS
#include <cblas.h>
#endif

#include "../errors.hpp"
#include "../tensor.hpp"
#include "../threading.hpp"

namespace convnet {

enum class Transpose { No, Yes };

namespace detail {

/// Eigen's blocking sizes with packing buffers we own and keep.
template <class T>
class GemmWorkspace : public Eigen::internal::level3_blocking<T, T> {
 public:
  void prepare(Index rows, Index cols, Index depth) {
    this->m_mc = rows;
    this->m_nc = cols;
    this->m_kc = depth;
    Eigen::internal::computeProductBlockingSizes<T, T, 1>(this->m_kc, this->m_mc, this->m_nc, Index(1));
    grow(block_a_, this->m_kc * this->m_mc);
    grow(block_b_, this->m_kc * this->m_nc);
    this->m_blockA = block_a_.data();
    this->m_blockB = block_b_.data();
  }

 private:
  static void grow(Vector<T>& buffer, Index size) {
    if (buffer.size() < size) buffer.resize(size);
  }
  Vector<T> block_a_, block_b_;
};

template <class T>
GemmWorkspace<T>& gemm_workspace() {
  thread_local GemmWorkspace<T> workspace;
  return workspace;
}

// Column-major result res[rows x cols] += alpha * lhs * rhs, on one thread.
template <class T, int LhsOrder, int RhsOrder>
void gemm_kernel(Index rows, Index cols, Index depth, const T* lhs, Index lhs_stride, const T* rhs, Index rhs_stride,
                 T* res, Index res_stride, T alpha) {
  if (rows == 0 || cols == 0 || depth == 0) return;
  GemmWorkspace<T>& ws = gemm_workspace<T>();
  ws.prepare(rows, cols, depth);
  Eigen::internal::general_matrix_matrix_product<Index, T, LhsOrder, false, T, RhsOrder, false, Eigen::ColMajor,
                                                 1>::run(rows, cols, depth, lhs, lhs_stride, rhs, rhs_stride, res, 1,
                                                         res_stride, alpha, ws);
}

// Row-major C[M x N] += alpha * op(A) * op(B), on one thread: computed as the
// column-major C^T = op(B)^T * op(A)^T, which reads the same memory.
template <class T>
void gemm_serial(Transpose ta, Transpose tb, Index m, Index n, Index k, T alpha, const T* a, Index lda, const T* b,
                 Index ldb, T* c, Index ldc) {
  // op(B)^T is column-major when B is stored untransposed (row-major K x N), row-major otherwise.
  if (tb == Transpose::No) {
    if (ta == Transpose::No) {
      gemm_kernel<T, Eigen::ColMajor, Eigen::ColMajor>(n, m, k, b, ldb, a, lda, c, ldc, alpha);
    } else {
      gemm_kernel<T, Eigen::ColMajor, Eigen::RowMajor>(n, m, k, b, ldb, a, lda, c, ldc, alpha);
    }
  } else {
    if (ta == Transpose::No) {
      gemm_kernel<T, Eigen::RowMajor, Eigen::ColMajor>(n, m, k, b, ldb, a, lda, c, ldc, alpha);
    } else {
      gemm_kernel<T, Eigen::RowMajor, Eigen::RowMajor>(n, m, k, b, ldb, a, lda, c, ldc, alpha);
    }
  }
}

// Row-major C[M x N] (beta 0 or 1) for M <= kThinRows: each row of C is a
// matrix-vector product through Eigen's GEMV kernel, which reads op(B) once
// in place. The blocked kernel would first pack all of op(B): for a fully
// connected layer at batch 1 that is the whole weight matrix (fc6 of the
// paper: 151 MB) copied every call to multiply it by one vector.
// Columns [col0, col0 + cols) only, so threads can split N.
constexpr Index kThinRows = 4;

template <class T>
void gemm_thin(Transpose ta, Transpose tb, Index m, Index col0, Index cols, Index k, T alpha, const T* a, Index lda,
               const T* b, Index ldb, T beta, T* c, Index ldc) {
  using RowVector = Eigen::Matrix<T, 1, Eigen::Dynamic>;
  using Stride = Eigen::InnerStride<Eigen::Dynamic>;
  using RowMajorMap = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>, 0,
                                 Eigen::OuterStride<>>;
  for (Index i = 0; i < m; ++i) {
    // Row i of op(A): contiguous, or a column of A when transposed.
    Eigen::Map<const RowVector, 0, Stride> a_row(ta == Transpose::No ? a + i * lda : a + i, k,
                                                 Stride(ta == Transpose::No ? 1 : lda));
    Eigen::Map<RowVector> c_row(c + i * ldc + col0, cols);
    if (beta == T(0)) c_row.setZero();
    if (tb == Transpose::No) {  // op(B) = B, K x N row-major
      const RowMajorMap b_part(b + col0, k, cols, Eigen::OuterStride<>(ldb));
      c_row.noalias() += alpha * a_row * b_part;
    } else {  // op(B) = B^T with B N x K row-major
      const RowMajorMap b_part(b + col0 * ldb, cols, k, Eigen::OuterStride<>(ldb));
      c_row.noalias() += alpha * a_row * b_part.transpose();
    }
  }
}

}  // namespace detail

/// C[M x N] = alpha * op(A) * op(B) + beta * C, row-major; op(A) is M x K and
/// op(B) is K x N. lda, ldb, ldc are the row strides of A, B, C as stored
/// (A is M x K, or K x M when transposed). beta is 0 or 1.
/// Runs on all threads unless called from inside a parallel region.
template <class T>
void gemm(Transpose ta, Transpose tb, Index m, Index n, Index k, T alpha, const T* a, Index lda, const T* b, Index ldb,
          T beta, T* c, Index ldc) {
  if (beta != T(0) && beta != T(1)) throw ArgumentError("gemm: beta must be 0 or 1");
#ifdef CONVNET_USE_OPENBLAS
  if constexpr (std::is_same<T, float>::value || std::is_same<T, double>::value) {
    if (m == 0 || n == 0) return;
    const auto op_a = ta == Transpose::Yes ? CblasTrans : CblasNoTrans;
    const auto op_b = tb == Transpose::Yes ? CblasTrans : CblasNoTrans;
    if constexpr (std::is_same<T, float>::value) {
      cblas_sgemm(CblasRowMajor, op_a, op_b, static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k),
                  alpha, a, static_cast<blasint>(lda), b, static_cast<blasint>(ldb), beta, c, static_cast<blasint>(ldc));
    } else {
      cblas_dgemm(CblasRowMajor, op_a, op_b, static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k),
                  alpha, a, static_cast<blasint>(lda), b, static_cast<blasint>(ldb), beta, c, static_cast<blasint>(ldc));
    }
    return;
  }
#endif
  int threads = 1;
#ifdef _OPENMP
  // Fewer than ~2^20 multiply-adds per thread is not worth a fork.
  if (!omp_in_parallel()) {
    const double work = static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
    threads = static_cast<int>(std::min<double>(num_threads(), std::max(1.0, work / (1 << 20))));
  }
#endif
  if (m <= detail::kThinRows && n >= 64) {
    // A few rows (a layer at batch 1 to 4): matrix-vector products, N split between threads.
    const Index chunk = std::max<Index>(64, (n / threads + 63) / 64 * 64);
    const Index blocks = (n + chunk - 1) / chunk;
    detail::parallel_for(blocks, threads > 1, [&](Index block, int) {
      const Index start = block * chunk;
      detail::gemm_thin(ta, tb, m, start, std::min(chunk, n - start), k, alpha, a, lda, b, ldb, beta, c, ldc);
    });
    return;
  }
  // Split C into row blocks (when it is tall) or column blocks, in multiples of 16.
  const bool split_rows = m >= n;
  const Index extent = split_rows ? m : n;
  const Index chunk = std::max<Index>(16, (extent / threads + 15) / 16 * 16);
  const Index blocks = (extent + chunk - 1) / chunk;
  detail::parallel_for(blocks, threads > 1, [&](Index block, int) {
    const Index start = block * chunk, size = std::min(chunk, extent - start);
    const T* a_part = a;
    const T* b_part = b;
    T* c_part = c;
    Index rows = m, cols = n;
    if (split_rows) {
      a_part = ta == Transpose::No ? a + start * lda : a + start;
      c_part = c + start * ldc;
      rows = size;
    } else {
      b_part = tb == Transpose::No ? b + start : b + start * ldb;
      c_part = c + start;
      cols = size;
    }
    if (beta == T(0)) {
      for (Index i = 0; i < rows; ++i) std::fill(c_part + i * ldc, c_part + i * ldc + cols, T(0));
    }
    detail::gemm_serial(ta, tb, rows, cols, k, alpha, a_part, lda, b_part, ldb, c_part, ldc);
  });
}

}  // namespace convnet
