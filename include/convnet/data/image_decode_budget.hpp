// The memory a picture may take while it is decoded, held to a number fixed before decoding.
//
// Two parts. The arena: stb_image allocates through stb_arena_malloc/realloc/free (image_io.hpp
// defines STBI_MALLOC and friends to them), which count the bytes of the thread's current
// decoding and refuse past its limit, so stb fails with "out of memory" instead of following a
// hostile file (a deflate stream that inflates past its header's size, say). The budget: one
// process-wide count of the bytes decoding threads have reserved; a decoding reserves its worst
// case first and waits while the others hold too much, so N threads never hold more than the
// budget together, whatever N is.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <string>

#include "../errors.hpp"

namespace convnet {
namespace detail {

/// What one decoding may allocate through stb, and what it has.
struct StbArena {
  std::size_t limit = 0;
  std::size_t used = 0;
  std::size_t peak = 0;
  bool refused = false;  // an allocation was refused: the picture needed more than its limit
};

inline StbArena*& current_stb_arena() {
  static thread_local StbArena* arena = nullptr;
  return arena;
}

/// Each block carries its size and the arena that counted it (none outside a decoding: stb's
/// header readers allocate a fixed few kilobytes).
struct alignas(16) StbBlockHeader {
  std::size_t size;
  StbArena* arena;
};

inline bool stb_arena_admits(StbArena* arena, std::size_t freed, std::size_t wanted) {
  if (arena == nullptr) return true;
  if (wanted > arena->limit || arena->used - freed > arena->limit - wanted) {
    arena->refused = true;
    return false;
  }
  return true;
}

inline void* stb_arena_malloc(std::size_t size) {
  StbArena* arena = current_stb_arena();
  if (!stb_arena_admits(arena, 0, size)) return nullptr;
  // Zeroed: stb 2.27 reads fields of its decoder state that a crafted file never sets (a JPEG that
  // uses a Huffman table it never defines), so with malloc's leftovers a picture decoded differently
  // - and once failed stb's own assertion, reading past a table - after other pictures (found by
  // fuzzing). Zeroed memory makes every decoding independent of what came before.
  auto* block = static_cast<StbBlockHeader*>(std::calloc(1, sizeof(StbBlockHeader) + size));
  if (block == nullptr) return nullptr;
  block->size = size;
  block->arena = arena;
  if (arena != nullptr) {
    arena->used += size;
    if (arena->used > arena->peak) arena->peak = arena->used;
  }
  return block + 1;
}

inline void stb_arena_free(void* p) {
  if (p == nullptr) return;
  StbBlockHeader* block = static_cast<StbBlockHeader*>(p) - 1;
  if (block->arena != nullptr && block->arena == current_stb_arena()) block->arena->used -= block->size;
  std::free(block);
}

inline void* stb_arena_realloc(void* p, std::size_t size) {
  if (p == nullptr) return stb_arena_malloc(size);
  StbBlockHeader* block = static_cast<StbBlockHeader*>(p) - 1;
  StbArena* arena = block->arena == current_stb_arena() ? block->arena : nullptr;
  if (!stb_arena_admits(arena, block->size, size)) return nullptr;
  const std::size_t old_size = block->size;
  auto* grown = static_cast<StbBlockHeader*>(std::realloc(block, sizeof(StbBlockHeader) + size));
  if (grown == nullptr) return nullptr;
  grown->size = size;
  if (arena != nullptr) {
    arena->used = arena->used - old_size + size;
    if (arena->used > arena->peak) arena->peak = arena->used;
  }
  return grown + 1;
}

/// Makes `arena` the calling thread's for stb's allocations while it lives.
class StbArenaScope {
 public:
  explicit StbArenaScope(std::size_t limit) : previous_(current_stb_arena()) {
    arena_.limit = limit;
    current_stb_arena() = &arena_;
  }
  ~StbArenaScope() { current_stb_arena() = previous_; }
  StbArenaScope(const StbArenaScope&) = delete;
  StbArenaScope& operator=(const StbArenaScope&) = delete;
  const StbArena& arena() const { return arena_; }

 private:
  StbArena arena_;
  StbArena* previous_;
};

}  // namespace detail

/// The bytes every thread of the process may hold in pictures being decoded, together (decoded
/// pixels and the decoder's buffers; the files themselves are the caller's). A decoding reserves
/// its worst case (decode_cost) and waits while others hold too much; one that alone needs more
/// than the whole budget is refused at once, so waiting always ends.
class ImageDecodeBudget {
 public:
  static ImageDecodeBudget& process() {
    static ImageDecodeBudget budget;
    return budget;
  }

  /// Default 2 GiB. Lowering it below what is held now only delays new decodings.
  void set_total(std::uint64_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      total_ = bytes;
    }
    released_.notify_all();
  }
  std::uint64_t total() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return total_;
  }
  std::uint64_t in_use() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return in_use_;
  }
  /// The most ever held at once (for tests and benchmarks).
  std::uint64_t peak() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return peak_;
  }

  void reset_peak() {
    std::lock_guard<std::mutex> lock(mutex_);
    peak_ = in_use_;
  }

  /// Bytes held until it is destroyed.
  class Reservation {
   public:
    Reservation(ImageDecodeBudget* budget, std::uint64_t bytes) : budget_(budget), bytes_(bytes) {}
    Reservation(Reservation&& other) noexcept : budget_(other.budget_), bytes_(other.bytes_) { other.budget_ = nullptr; }
    Reservation(const Reservation&) = delete;
    Reservation& operator=(const Reservation&) = delete;
    Reservation& operator=(Reservation&&) = delete;
    ~Reservation() {
      if (budget_ != nullptr) budget_->release(bytes_);
    }

   private:
    ImageDecodeBudget* budget_;
    std::uint64_t bytes_;
  };

  /// Waits until `bytes` fit beside what the other threads hold; DataError naming `source` when
  /// they could never fit.
  Reservation reserve(std::uint64_t bytes, const std::string& source) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (bytes > total_) {
      throw DataError(detail::concat("image ", source, " needs up to ", bytes, " bytes to decode, more than the ",
                                     total_, " bytes all decoding may hold (set_image_decode_budget)"));
    }
    released_.wait(lock, [&] { return bytes <= total_ - std::min(in_use_, total_) || bytes > total_; });
    if (bytes > total_) {  // the total was lowered while this one waited
      throw DataError(detail::concat("image ", source, " needs up to ", bytes, " bytes to decode, more than the ",
                                     total_, " bytes all decoding may hold (set_image_decode_budget)"));
    }
    in_use_ += bytes;
    if (in_use_ > peak_) peak_ = in_use_;
    return Reservation(this, bytes);
  }

 private:
  void release(std::uint64_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      in_use_ -= bytes;
    }
    released_.notify_all();
  }

  mutable std::mutex mutex_;
  std::condition_variable released_;
  std::uint64_t total_ = 2ULL << 30;
  std::uint64_t in_use_ = 0;
  std::uint64_t peak_ = 0;
};

/// Sets the bytes all decoding threads of the process may hold together (default 2 GiB).
inline void set_image_decode_budget(std::uint64_t bytes) { ImageDecodeBudget::process().set_total(bytes); }

}  // namespace convnet
