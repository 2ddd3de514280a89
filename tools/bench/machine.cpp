#include "machine.h"

#include <ATen/Parallel.h>
#include <torch/version.h>

#include <fstream>
#include <sstream>
#include <thread>

#ifdef PYRAMIDION_HAS_CUDA
#include <ATen/cuda/CUDAContext.h>
#endif

#ifndef PYRAMIDION_BUILD_TYPE
#define PYRAMIDION_BUILD_TYPE "unknown"
#endif

namespace pyramidion {
namespace bench {
namespace {

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) != 0) continue;
    const auto colon = line.find(':');
    if (colon == std::string::npos) break;
    const auto begin = line.find_first_not_of(" \t", colon + 1);
    return begin == std::string::npos ? "unknown" : line.substr(begin);
  }
  return "unknown";
}

std::string compiler() {
#if defined(__clang__)
  return "clang " __clang_version__;
#elif defined(__GNUC__)
  return "gcc " __VERSION__;
#else
  return "unknown";
#endif
}

}  // namespace

double load_average() {
  std::ifstream in("/proc/loadavg");
  double load = -1;
  if (!(in >> load)) return -1;
  return load;
}

Machine describe_machine() {
  Machine m;
  m.cpu_model = cpu_model();
  m.logical_cpus = static_cast<int>(std::thread::hardware_concurrency());
  m.threads = at::get_num_threads();
  m.torch_version = TORCH_VERSION;
  m.build_type = PYRAMIDION_BUILD_TYPE;
  m.compiler = compiler();
  return m;
}

std::string cuda_device_name(const c10::Device& device) {
#ifdef PYRAMIDION_HAS_CUDA
  const cudaDeviceProp* p = at::cuda::getDeviceProperties(device.index() < 0 ? 0 : device.index());
  int runtime = 0;
  cudaRuntimeGetVersion(&runtime);
  return std::string(p->name) + ", compute capability " + std::to_string(p->major) + "." + std::to_string(p->minor) +
         ", " + std::to_string(p->multiProcessorCount) + " SMs, CUDA runtime " + std::to_string(runtime / 1000) + "." +
         std::to_string(runtime % 1000 / 10);
#else
  return "CUDA not built (" + device.str() + ")";
#endif
}

std::string to_markdown(const Machine& m) {
  std::ostringstream out;
  out << "- CPU: " << m.cpu_model << ", " << m.logical_cpus << " logical CPUs\n"
      << "- Threads used: " << m.threads << " (at::get_num_threads)\n"
      << "- LibTorch " << m.torch_version << ", build type " << m.build_type << ", " << m.compiler << "\n";
  return out.str();
}

nlohmann::json to_json(const Machine& m) {
  return {{"cpu_model", m.cpu_model},         {"logical_cpus", m.logical_cpus}, {"threads", m.threads},
          {"torch_version", m.torch_version}, {"build_type", m.build_type},     {"compiler", m.compiler}};
}

std::string shell_quote(const std::string& arg) {
  const bool plain =
      !arg.empty() &&
      arg.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=.,/:+") ==
          std::string::npos;
  if (plain) return arg;
  std::string quoted = "'";
  for (const char c : arg) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

std::string command_line(int argc, const char* const* argv) {
  std::string line;
  for (int i = 0; i < argc; ++i) {
    if (i > 0) line += ' ';
    line += shell_quote(argv[i]);
  }
  return line;
}

}  // namespace bench
}  // namespace pyramidion
