#include "measure.h"

#include <torch/cuda.h>

#include "util/output_file.h"
#include "common/standard_streams.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iomanip>
#include <sstream>
#include <stdexcept>
#include <string>
#include <mutex>
#include <unordered_map>
#include <vector>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace pyramidion {
namespace bench {

void synchronize(const c10::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  const auto mid = values.begin() + values.size() / 2;
  std::nth_element(values.begin(), mid, values.end());
  if (values.size() % 2 == 1) return *mid;
  return (*mid + *std::max_element(values.begin(), mid)) / 2;
}

namespace {

// Keeps the data pointer as the context (as the default allocator does: some callers rely on
// raw_allocate/raw_deallocate) and remembers each allocation's size in a map.
class CountingAllocator final : public c10::Allocator {
 public:
  explicit CountingAllocator(c10::Allocator* inner) : inner_(inner) {}

  c10::DataPtr allocate(size_t bytes) override {
    void* ptr = take_kept(bytes);
    if (ptr == nullptr) {
      c10::DataPtr data = inner_->allocate(bytes);
      TORCH_CHECK(data.get() == data.get_context(),
                  "pyramidion-bench: the default CPU allocator is not a simple one");
      ptr = data.release_context();
    }
    if (ptr != nullptr) {
      std::lock_guard<std::mutex> lock(mutex_);
      sizes_[ptr] = bytes;
      live_ += static_cast<int64_t>(bytes);
      peak_ = std::max(peak_, live_);
    }
    return {ptr, ptr, &release, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &release; }

  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }

  int64_t live() {
    std::lock_guard<std::mutex> lock(mutex_);
    return live_;
  }
  int64_t peak() {
    std::lock_guard<std::mutex> lock(mutex_);
    return peak_;
  }
  void reset_peak() {
    std::lock_guard<std::mutex> lock(mutex_);
    peak_ = live_;
  }
  void set_reuse(bool reuse) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      reuse_ = reuse;
    }
    if (!reuse) free_kept();
  }
  void free_kept() {
    std::unordered_map<size_t, std::vector<void*>> kept;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      kept.swap(kept_);
    }
    for (auto& [bytes, blocks] : kept)
      for (void* ptr : blocks) inner_->raw_deleter()(ptr);
  }

 private:
  static void release(void* ptr);

  void* take_kept(size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!reuse_) return nullptr;
    const auto it = kept_.find(bytes);
    if (it == kept_.end() || it->second.empty()) return nullptr;
    void* ptr = it->second.back();
    it->second.pop_back();
    return ptr;
  }

  c10::Allocator* inner_;
  std::mutex mutex_;
  std::unordered_map<void*, size_t> sizes_;
  std::unordered_map<size_t, std::vector<void*>> kept_;  // freed blocks by size, when reuse_
  bool reuse_ = false;
  int64_t live_ = 0;
  int64_t peak_ = 0;
};

CountingAllocator* instance = nullptr;

void CountingAllocator::release(void* ptr) {
  if (ptr == nullptr) return;
  {
    std::lock_guard<std::mutex> lock(instance->mutex_);
    const auto it = instance->sizes_.find(ptr);
    if (it != instance->sizes_.end()) {
      const size_t bytes = it->second;
      instance->live_ -= static_cast<int64_t>(bytes);
      instance->sizes_.erase(it);
      if (instance->reuse_) {
        instance->kept_[bytes].push_back(ptr);
        return;
      }
    }
  }
  instance->inner_->raw_deleter()(ptr);
}

}  // namespace

void AllocationTracker::install() {
  if (instance != nullptr) return;
  c10::Allocator* inner = c10::GetCPUAllocator();
  TORCH_CHECK(inner->raw_deleter() != nullptr,
              "pyramidion-bench: the CPU allocator has no raw deleter to wrap");
  instance = new CountingAllocator(inner);  // lives as long as the process: tensors may outlive main
  c10::SetCPUAllocator(instance, /*priority=*/100);
}

bool AllocationTracker::installed() { return instance != nullptr; }
int64_t AllocationTracker::live_bytes() { return instance ? instance->live() : 0; }
int64_t AllocationTracker::peak_bytes() { return instance ? instance->peak() : 0; }
void AllocationTracker::reset_peak() {
  if (instance) instance->reset_peak();
}
void AllocationTracker::set_reuse(bool reuse) {
  TORCH_CHECK(instance != nullptr, "pyramidion-bench: AllocationTracker::install() first");
  instance->set_reuse(reuse);
}
void AllocationTracker::release_free_memory() {
  if (instance) instance->free_kept();
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

std::string stem(const std::string& path) {
  const auto slash = path.find_last_of('/');
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  const auto dot = name.rfind('.');
  return dot == std::string::npos || dot == 0 ? name : name.substr(0, dot);
}

void check_writable(const std::string& path) { detail::check_writable("pyramidion-bench", path); }

void emit_report(const std::string& markdown, const std::string& json, const std::string& markdown_path,
                 const std::string& json_path) {
  tools::print("the report", markdown);
  if (!markdown_path.empty()) detail::write_output_file("pyramidion-bench", markdown_path, markdown);
  if (!json_path.empty()) detail::write_output_file("pyramidion-bench", json_path, json);
}

}  // namespace bench
}  // namespace pyramidion
