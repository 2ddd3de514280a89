// Where the time of a run goes, per LibTorch operator: the legacy CPU profiler (RecordFunction,
// with input shapes) around one call, aggregated by operator and shapes into self time (the
// operator's time minus that of the operators it called). For a report's "where the time goes".
#pragma once

#include <functional>
#include <string>

namespace pyramidion {
namespace bench {

/// Runs f once under the profiler; returns a markdown table of the `top` operators (with their
/// input shapes) by self time: calls, self ms, share of the profiled wall time.
std::string op_profile_markdown(const std::function<void()>& f, int top = 15);

}  // namespace bench
}  // namespace pyramidion
