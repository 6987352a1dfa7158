// Which arithmetic the matrix products of Conv2d and Dense use: fp32, or bf16 inputs with fp32
// accumulation (the mixed-precision recipe: weights, gradients, optimizer state, batch
// normalisation, LRN, softmax, losses and reductions all stay fp32; only the operands of the
// products are rounded to bf16 as they are packed, kernels/gemm_bf16.hpp).
//
//   net.set_precision(Precision::Bf16);    // every Conv2d and Dense, now and added later
//   resolve(Precision::Auto)               // bf16 where the host has AMX, else fp32
//
// bf16 on a host without a bf16 matrix unit is allowed (tests, comparisons) and runs the
// reference: the fp32 kernel on the rounded operands. Networks in double ignore it: their products
// stay in double, so gradient checks are unaffected.
#pragma once

#include <string>

#include "cpu_features.hpp"
#include "errors.hpp"

namespace convnet {

enum class Precision { Auto, Fp32, Bf16 };

inline const char* to_string(Precision p) {
  return p == Precision::Auto ? "auto" : p == Precision::Fp32 ? "fp32" : "bf16";
}

/// "auto", "fp32" or "bf16"; anything else is an ArgumentError naming `what` (a flag, a setting).
inline Precision parse_precision(const std::string& name, const std::string& what = "precision") {
  if (name == "auto") return Precision::Auto;
  if (name == "fp32") return Precision::Fp32;
  if (name == "bf16") return Precision::Bf16;
  throw ArgumentError(what + " must be auto, fp32 or bf16, got '" + name + "'");
}

/// What `p` means on this host: Auto is bf16 where the products run on AMX (matrix_path(), so
/// CONVNET_ISA=fp32 turns it off), fp32 elsewhere; fp32 and bf16 mean themselves.
inline Precision resolve(Precision p, MatrixPath path = matrix_path()) {
  if (p != Precision::Auto) return p;
  return path == MatrixPath::Amx ? Precision::Bf16 : Precision::Fp32;
}

/// One line for banners: "bf16 (amx)", "bf16 (emulated: fp32 kernel on bf16-rounded operands)", "fp32".
inline std::string describe_precision(Precision p, MatrixPath path = matrix_path()) {
  const Precision r = resolve(p, path);
  if (r == Precision::Fp32) return "fp32";
  if (path == MatrixPath::Amx) return "bf16 on amx";
  return "bf16 (emulated: fp32 kernel on bf16-rounded operands)";
}

}  // namespace convnet
