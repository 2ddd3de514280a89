// The machine a benchmark ran on, recorded with every result (llama-bench style): a number without
// its hardware and build is not comparable with anything.
#pragma once

#include <c10/core/Device.h>
#include <nlohmann/json.hpp>

#include <string>

namespace pyramidion {
namespace bench {

struct Machine {
  std::string cpu_model;      // "model name" of /proc/cpuinfo; "unknown" elsewhere
  int logical_cpus = 0;       // std::thread::hardware_concurrency()
  int threads = 0;            // at::get_num_threads() when the benchmark ran
  std::string torch_version;  // LibTorch the tool was compiled against
  std::string build_type;     // CMAKE_BUILD_TYPE of the tool
  std::string compiler;       // compiler id and version
};

/// The 1-minute load average of the whole machine (/proc/loadavg); -1 where unknown. On a shared
/// machine it says how much other work competed with the benchmark.
double load_average();

/// Describes this machine; call after the thread count is set.
Machine describe_machine();

/// The name of a CUDA device and its driver's CUDA version ("NVIDIA H200, CUDA runtime 13.0");
/// "CUDA not built" in a build without CUDA.
std::string cuda_device_name(const c10::Device& device);

/// "- CPU: ...\n- ..." lines for a markdown report.
std::string to_markdown(const Machine& machine);

nlohmann::json to_json(const Machine& machine);

/// `arg` as one shell word: unchanged when it is plain, in single quotes otherwise.
std::string shell_quote(const std::string& arg);

/// The command line, each argument shell-quoted where it needs it, to repeat the run.
std::string command_line(int argc, const char* const* argv);

}  // namespace bench
}  // namespace pyramidion
