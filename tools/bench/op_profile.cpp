// op_profile_markdown (see op_profile.h).
#include "op_profile.h"

#include <torch/csrc/autograd/profiler_legacy.h>

#include <algorithm>
#include <map>
#include <sstream>
#include <utility>
#include <vector>

#include "measure.h"

namespace pyramidion {
namespace bench {
namespace {

namespace prof = torch::autograd::profiler;

std::string shapes_text(const std::vector<std::vector<int64_t>>& shapes) {
  std::string s;
  for (const auto& shape : shapes) {
    if (shape.empty()) continue;  // scalars and absent inputs
    if (!s.empty()) s += " ";
    s += "[";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
    s += "]";
  }
  return s;
}

struct Total {
  int64_t calls = 0;
  double self_us = 0;
};

}  // namespace

std::string op_profile_markdown(const std::function<void()>& f, int top) {
  std::map<std::pair<std::string, std::string>, Total> totals;  // (name, shapes) -> totals
  Stopwatch clock;
  {
    const torch::profiler::impl::ProfilerConfig config(torch::profiler::impl::ProfilerState::CPU,
                                                        /*report_input_shapes=*/true);
    prof::TLSLegacyProfilerGuard guard(config, [&](const prof::thread_event_lists& lists) {
      for (const auto& list : lists) {
        struct Open {
          const prof::LegacyEvent* push;
          double children_us = 0;
        };
        std::vector<Open> stack;
        for (const auto& e : list) {
          if (e.kind() == prof::EventKind::PushRange) {
            stack.push_back({&e});
          } else if (e.kind() == prof::EventKind::PopRange && !stack.empty()) {
            const Open open = stack.back();
            stack.pop_back();
            const double us = open.push->cpuElapsedUs(e);
            auto& t = totals[{open.push->name(), shapes_text(open.push->shapes())}];
            t.calls += 1;
            t.self_us += us - open.children_us;
            if (!stack.empty()) stack.back().children_us += us;
          }
        }
      }
    });
    f();
  }
  const double wall_us = clock.ms() * 1000.0;
  std::vector<std::pair<std::pair<std::string, std::string>, Total>> rows(totals.begin(), totals.end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.self_us > b.second.self_us; });
  double all_self = 0;
  for (const auto& r : rows) all_self += r.second.self_us;
  std::ostringstream md;
  md << "| operator | input shapes | calls | self ms | share of the run |\n|:---|:---|---:|---:|---:|\n";
  for (size_t i = 0; i < rows.size() && static_cast<int>(i) < top; ++i) {
    const auto& [key, t] = rows[i];
    md << "| " << key.first << " | " << (key.second.empty() ? "-" : key.second) << " | " << t.calls << " | "
       << format_fixed(t.self_us / 1000.0, 1) << " | " << format_fixed(100.0 * t.self_us / wall_us, 1) << "% |\n";
  }
  md << "\nProfiled wall time " << format_fixed(wall_us / 1e6, 2) << " s (the profiler's overhead included); all "
     << "operators' self time " << format_fixed(all_self / 1e6, 2) << " s; the rest is outside LibTorch's operators.\n";
  return md.str();
}

}  // namespace bench
}  // namespace pyramidion
