// DeviceSpec: where a job runs, as a user names it ("cpu", "cuda", "cuda:1"). The one parser of
// device names: TrainConfig.device and pyramidion-summarize's --device both go through it.
//
//   auto spec = pyramidion::parse_device("cuda");     // syntax only: std::invalid_argument
//   at::Device device = spec.resolve(local_rank);     // cuda = cuda:local_rank; std::runtime_error
//                                                     // when CUDA or that device is absent
#pragma once

#include <c10/core/Device.h>

#include <string>

namespace pyramidion {

struct DeviceSpec {
  enum class Kind { cpu, cuda };
  /// The device type.
  Kind kind = Kind::cpu;
  /// The CUDA device; -1 = the process's LOCAL_RANK (one GPU per process). Unused for cpu.
  int index = -1;

  /// The device to use in a process whose LOCAL_RANK is `local_rank`. Throws std::runtime_error
  /// naming the spec when CUDA is asked for and no CUDA device is available, or the index is not a
  /// device of this machine.
  at::Device resolve(int local_rank = 0) const;
};

/// "cpu", "cuda" (index -1) or "cuda:N" (N >= 0). Throws std::invalid_argument "<what> =
/// \"<name>\" must be \"cpu\", \"cuda\" or \"cuda:N\"" for anything else.
DeviceSpec parse_device(const std::string& name, const std::string& what = "device");

/// The spec's name as parse_device() reads it: "cpu", "cuda", "cuda:1".
std::string to_string(const DeviceSpec& device);

bool operator==(const DeviceSpec& a, const DeviceSpec& b);
bool operator!=(const DeviceSpec& a, const DeviceSpec& b);

}  // namespace pyramidion
