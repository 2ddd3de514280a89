// The device parser (include/pyramidion/device.h).
#include <pyramidion/device.h>

#include <torch/cuda.h>

#include <stdexcept>

namespace pyramidion {

DeviceSpec parse_device(const std::string& name, const std::string& what) {
  if (name == "cpu") return {};
  if (name == "cuda") return {DeviceSpec::Kind::cuda, -1};
  if (name.rfind("cuda:", 0) == 0 && name.size() > 5 && name.size() <= 9) {
    int index = 0;
    bool digits = true;
    for (size_t i = 5; i < name.size(); ++i) {
      digits = digits && name[i] >= '0' && name[i] <= '9';
      index = index * 10 + (name[i] - '0');
    }
    if (digits) return {DeviceSpec::Kind::cuda, index};
  }
  throw std::invalid_argument(what + " = \"" + name + "\" must be \"cpu\", \"cuda\" or \"cuda:N\"");
}

std::string to_string(const DeviceSpec& device) {
  if (device.kind == DeviceSpec::Kind::cpu) return "cpu";
  return device.index < 0 ? "cuda" : "cuda:" + std::to_string(device.index);
}

at::Device DeviceSpec::resolve(int local_rank) const {
  if (kind == Kind::cpu) return at::kCPU;
  const int device = index < 0 ? local_rank : index;
  if (!torch::cuda::is_available())
    throw std::runtime_error("device \"" + to_string(*this) + "\": no CUDA device is available here (use \"cpu\")");
  const auto count = static_cast<int>(torch::cuda::device_count());
  if (device < 0 || device >= count)
    throw std::runtime_error("device \"" + to_string(*this) + "\": device " + std::to_string(device) +
                             " does not exist (" + std::to_string(count) + " CUDA devices)");
  return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(device));
}

bool operator==(const DeviceSpec& a, const DeviceSpec& b) { return a.kind == b.kind && a.index == b.index; }
bool operator!=(const DeviceSpec& a, const DeviceSpec& b) { return !(a == b); }

}  // namespace pyramidion
