// Tensor descriptions for error messages (util/tensor_text.h).
#include "util/tensor_text.h"

#include "util/text.h"

namespace pyramidion {
namespace detail {

std::string format_sizes(c10::IntArrayRef sizes) { return format_list(sizes.vec()); }

std::string describe(const at::Tensor& t) {
  return t.defined() ? format_sizes(t.sizes()) : std::string("an undefined tensor");
}

}  // namespace detail
}  // namespace pyramidion
