// Private: what a search will hold at its largest, checked before it allocates anything, so that a
// beam or a length that no machine here can hold is refused with its estimate (std::invalid_argument)
// instead of ending in an allocation failure deep inside LibTorch.
#pragma once

#include <pyramidion/config.h>
#include <pyramidion/generate_options.h>

#include <cstdint>

namespace pyramidion {
namespace detail {

/// Bytes generate() holds at its largest for `examples` sources of `memory_length` encoder rows,
/// roughly (within a small factor): the self-attention caches of every beam (and the spare that
/// reordering writes into), the cross-attention keys and values, one step's scores over the
/// vocabulary, and the hypotheses.
double generation_bytes(const ModelConfig& config, const GenerateOptions& options, int64_t examples,
                        int64_t memory_length, int64_t element_size);

/// This machine's physical memory in bytes (0 when unknown).
double physical_memory_bytes();

/// Throws std::invalid_argument with the estimate, the options and `available_bytes` when
/// generation_bytes() exceeds it (nothing when available_bytes is 0: unknown).
void check_generation_memory(const ModelConfig& config, const GenerateOptions& options, int64_t examples,
                             int64_t memory_length, int64_t element_size, double available_bytes);

}  // namespace detail
}  // namespace pyramidion
