// What this processor can do, found once at run time: the one place the library asks. Kernels are
// compiled for several instruction sets with per-function target attributes and pick among them
// by what is found here, so one build runs on an AVX2 Zen 3, an AVX-512 Zen 5 and a Sapphire
// Rapids with AMX alike.
//
//   const CpuFeatures& cpu = cpu_features();
//   if (cpu.amx_bf16) ...                   // the matrix units, usable by this process
//   matrix_path()                           // the path the bf16 products take: amx, avx512bf16 or fp32
//
// AMX needs three things: the CPU has it (CPUID.(7,0):EDX bits 22 amx_bf16 and 24 amx_tile), the
// operating system saves its state (XCR0 bits 17 and 18), and the process asked Linux for the
// tile data (arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA), Linux >= 5.16); the last is done
// here, once. CONVNET_ISA=fp32|avx512bf16|amx forces a path no higher than the host has (tests
// and side-by-side comparisons); a higher one is an error naming what the host lacks.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <string>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#define CONVNET_X86 1
#endif

#include "errors.hpp"

namespace convnet {

struct CpuFeatures {
  bool avx2 = false, fma = false;
  bool avx512f = false, avx512bw = false, avx512vl = false;
  bool avx512_bf16 = false;  ///< VDPBF16PS and the bf16 conversions
  bool amx_tile = false, amx_bf16 = false;  ///< usable: CPU, OS state and this process's permission
  std::string describe() const {
    std::string s;
    auto add = [&s](bool on, const char* name) {
      if (on) s += (s.empty() ? "" : " ") + std::string(name);
    };
    add(avx2, "avx2");
    add(fma, "fma");
    add(avx512f, "avx512f");
    add(avx512_bf16, "avx512_bf16");
    add(amx_tile && amx_bf16, "amx_bf16");
    return s.empty() ? "baseline" : s;
  }
};

namespace detail {

#ifdef CONVNET_X86
inline std::uint64_t read_xcr0() {
  std::uint32_t eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<std::uint64_t>(edx) << 32) | eax;
}
#endif

inline CpuFeatures detect_cpu_features() {
  CpuFeatures f;
#ifdef CONVNET_X86
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = (c >> 27) & 1, fma = (c >> 12) & 1;
  if (!osxsave) return f;
  const std::uint64_t xcr0 = read_xcr0();
  const bool ymm = (xcr0 & 0x6) == 0x6, zmm = (xcr0 & 0xE6) == 0xE6, tiles = ((xcr0 >> 17) & 3) == 3;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
  f.avx2 = ymm && ((b >> 5) & 1);
  f.fma = ymm && fma;
  f.avx512f = zmm && ((b >> 16) & 1);
  f.avx512bw = zmm && ((b >> 30) & 1);
  f.avx512vl = zmm && ((b >> 31) & 1);
  const bool amx_bf16 = (d >> 22) & 1, amx_tile = (d >> 24) & 1;
  unsigned a1 = 0, b1 = 0, c1 = 0, d1 = 0;
  if (__get_cpuid_count(7, 1, &a1, &b1, &c1, &d1)) f.avx512_bf16 = f.avx512f && ((a1 >> 5) & 1);
#if defined(__linux__)
  if (amx_tile && amx_bf16 && tiles) {
    // Linux hands out the 8 KB of tile state only to a process that asks (ARCH_REQ_XCOMP_PERM for
    // XFEATURE_XTILEDATA); a kernel without it answers no, and AMX stays off.
    constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0) f.amx_tile = f.amx_bf16 = true;
  }
#endif
#endif
  return f;
}

}  // namespace detail

/// This host's features, detected on first use (thread-safe).
inline const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detail::detect_cpu_features();
  return features;
}

/// The paths a bf16 matrix product can take, lowest first.
enum class MatrixPath { Fp32, Avx512Bf16, Amx };

inline const char* to_string(MatrixPath p) {
  return p == MatrixPath::Amx ? "amx" : p == MatrixPath::Avx512Bf16 ? "avx512bf16" : "fp32";
}

/// The highest path the host has.
inline MatrixPath best_matrix_path(const CpuFeatures& f = cpu_features()) {
  if (f.amx_tile && f.amx_bf16 && f.avx512bw) return MatrixPath::Amx;
  if (f.avx512_bf16 && f.avx512bw) return MatrixPath::Avx512Bf16;
  return MatrixPath::Fp32;
}

/// The path `forced` (CONVNET_ISA's value; null or empty: none) asks for on a host whose best is
/// `best`: ArgumentError for an unknown name or a path above the host's.
inline MatrixPath choose_matrix_path(const char* forced, MatrixPath best, const std::string& host = cpu_features().describe()) {
  if (forced == nullptr || *forced == '\0') return best;
  const std::string v = forced;
  MatrixPath want;
  if (v == "fp32") {
    want = MatrixPath::Fp32;
  } else if (v == "avx512bf16") {
    want = MatrixPath::Avx512Bf16;
  } else if (v == "amx") {
    want = MatrixPath::Amx;
  } else {
    throw ArgumentError("CONVNET_ISA must be fp32, avx512bf16 or amx, got '" + v + "'");
  }
  if (static_cast<int>(want) > static_cast<int>(best)) {
    throw ArgumentError("CONVNET_ISA=" + v + ": this host has " + host + " (at most " + to_string(best) + ")");
  }
  return want;
}

/// The path bf16 products take in this process: the host's best, or CONVNET_ISA's when set.
inline MatrixPath matrix_path() {
  static const MatrixPath path = choose_matrix_path(std::getenv("CONVNET_ISA"), best_matrix_path());
  return path;
}

}  // namespace convnet
