// ProcessGroup (see include/pyramidion/distributed.h): a rendezvous over c10d::TCPStore, Gloo for
// CPU tensors, and NCCL for CUDA tensors when built with CUDA.
//
// c10d compiles its backends' declarations only under these macros. LibTorch's CMake target passes
// them to its users already (INTERFACE_COMPILE_DEFINITIONS of torch_cpu/torch_cuda); defining them
// here keeps this file correct when it is built some other way. Define them before any include.
#ifndef USE_DISTRIBUTED
#define USE_DISTRIBUTED
#endif
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO
#endif
#if defined(PYRAMIDION_WITH_CUDA) && !defined(USE_C10D_NCCL)
#define USE_C10D_NCCL
#endif

#include <pyramidion/distributed.h>

#include "util/tensor_text.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/Types.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>

// The PyPI wheel ships ProcessGroupGloo.hpp but not the Gloo headers it includes. The class only
// holds Gloo objects through pointers, so Debian's libgloo-dev headers describe it exactly. The
// build decides (CMake's PYRAMIDION_WITH_GLOO, reported at configure time): without them this
// library builds for single processes, and a multi-process job fails at start saying so.
#ifdef PYRAMIDION_HAS_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif

#ifdef PYRAMIDION_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <torch/csrc/cuda/nccl.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <thread>
#include <cstdlib>
#include <map>
#include <optional>
#include <exception>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace pyramidion {

namespace {

constexpr const char* kFrom = "ProcessGroup::from_environment: ";

std::optional<std::string> getenv_string(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

std::string in_quotes(const std::string& s) { return "\"" + s + "\""; }

// An exception's message; c10::Error's without the C++ backtrace it carries (which names no user
// input and runs to dozens of lines).
std::string message_of(const std::exception& e) {
  if (const auto* c10_error = dynamic_cast<const c10::Error*>(&e)) return c10_error->what_without_backtrace();
  return e.what();
}

// The whole of `value` as a base-10 integer, else std::invalid_argument naming the variable.
int64_t parse_int(const char* name, const std::string& value) {
  int64_t out = 0;
  const char* end = value.data() + value.size();
  const auto [ptr, ec] = std::from_chars(value.data(), end, out);
  if (value.empty() || ec != std::errc() || ptr != end)
    throw std::invalid_argument(std::string(kFrom) + name + " = " + in_quotes(value) + " is not an integer");
  return out;
}

std::string require(const char* name, int64_t world_size) {
  auto value = getenv_string(name);
  if (!value)
    throw std::invalid_argument(std::string(kFrom) + name + " is not set (WORLD_SIZE = " +
                                std::to_string(world_size) + " needs RANK, MASTER_ADDR and MASTER_PORT)");
  return *value;
}

void validate(const DistributedOptions& options) {
  const auto backend = options.backend();
  if (backend != CudaBackend::automatic && backend != CudaBackend::gloo && backend != CudaBackend::nccl)
    throw std::invalid_argument("DistributedOptions.backend = " + std::to_string(static_cast<int>(backend)) +
                                " must be automatic, gloo or nccl");
  if (options.timeout().count() <= 0)
    throw std::invalid_argument("DistributedOptions.timeout = " + std::to_string(options.timeout().count()) +
                                " s must be > 0");
  if (options.bucket_bytes() < 1)
    throw std::invalid_argument("DistributedOptions.bucket_bytes = " + std::to_string(options.bucket_bytes()) +
                                " must be >= 1");
}

// True once something accepts a TCP connection at host:port, trying until `deadline`: how a rank
// other than 0 waits for rank 0's store. c10d's own client retries too, but it logs a warning with
// a C++ backtrace per attempt and gives up only after about twice its timeout.
bool wait_for_listener(const std::string& host, uint16_t port, std::chrono::steady_clock::time_point deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  while (true) {
    addrinfo* found = nullptr;
    if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) == 0) {
      for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
        const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) continue;
        bool connected = ::connect(fd, a->ai_addr, a->ai_addrlen) == 0;
        if (!connected && errno == EINPROGRESS) {
          const auto left =
              std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
          pollfd p{fd, POLLOUT, 0};
          int error = 0;
          socklen_t size = sizeof error;
          connected = ::poll(&p, 1, static_cast<int>(std::clamp<int64_t>(left.count(), 1, 1000))) == 1 &&
                      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size) == 0 && error == 0;
        }
        ::close(fd);
        if (connected) {
          ::freeaddrinfo(found);
          return true;
        }
      }
      ::freeaddrinfo(found);
    }
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

// The time left until `deadline`, at least 1 ms (c10d takes 0 as "no timeout").
std::chrono::milliseconds left_until(std::chrono::steady_clock::time_point deadline) {
  return std::max(std::chrono::milliseconds(1),
                  std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()));
}

// FNV-1a, 62 bits: a value's fingerprint that survives negation in an int64 MAX-allreduce.
int64_t fingerprint(const std::string& text) {
  uint64_t h = 1469598103934665603ULL;
  for (const unsigned char c : text) h = (h ^ c) * 1099511628211ULL;
  return static_cast<int64_t>(h >> 2);
}

#ifdef PYRAMIDION_WITH_CUDA
// Why ProcessGroupNCCL cannot be used in this process, or "" when it can. Its Options embed
// ncclConfig_t, whose size changes with NCCL's minor version, and are allocated here (an inline
// factory) but filled by LibTorch: the headers seen here must match the NCCL LibTorch runs with.
std::string nccl_unusable_reason(int local_rank) {
  const int devices = static_cast<int>(at::cuda::device_count());
  if (devices == 0) return "no CUDA device is present";
  if (local_rank >= devices)
    return "LOCAL_RANK = " + std::to_string(local_rank) + " but only " + std::to_string(devices) +
           " CUDA devices are present";
  const auto runtime = static_cast<int64_t>(torch::cuda::nccl::version());
  const int64_t compiled = NCCL_VERSION_CODE;
  if (runtime / 100 != compiled / 100)
    return "pyramidion was compiled against NCCL " + std::to_string(NCCL_MAJOR) + "." +
           std::to_string(NCCL_MINOR) + " headers but LibTorch runs NCCL version code " +
           std::to_string(runtime) +
           " (their ncclConfig_t differ); put the runtime's nccl.h first on the include path";
  return "";
}
#endif

}  // namespace

struct ProcessGroup::Impl {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string master;  // "MASTER_ADDR:MASTER_PORT = host:port", for messages
  std::string master_addr;
  uint16_t master_port = 0;
  std::string cuda_backend = "none";
  int64_t bucket_bytes = 0;
  // Destroyed in reverse order: the backends before the store they rendezvoused through.
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> gloo;
  c10::intrusive_ptr<c10d::Backend> nccl;

  ~Impl() {
    // ProcessGroupNCCL expects an explicit shutdown (its watchdog thread) before destruction.
    if (nccl) {
      try {
        nccl->shutdown();
      } catch (const std::exception&) {
        // Destruction must not throw; the process is going away with its communicators anyway.
      }
    }
  }

  std::string where() const {
    return "rank " + std::to_string(rank) + " of " + std::to_string(world_size) + " (" + master + ")";
  }

  // from_environment's steps, in order.
  void read_ranks();   // WORLD_SIZE, RANK, LOCAL_RANK
  void read_master();  // MASTER_ADDR, MASTER_PORT (WORLD_SIZE > 1)
  std::string choose_cuda_backend(CudaBackend wanted) const;  // "gloo" or "nccl"
  void rendezvous(std::chrono::steady_clock::time_point deadline, const std::string& timeout_text);
  void connect_backends(const std::string& cuda_backend, std::chrono::milliseconds timeout,
                        const std::string& timeout_text);

  c10d::Backend& backend_for(const at::Tensor& t) const { return (t.is_cuda() && nccl) ? *nccl : *gloo; }

  // Waits for a collective; c10d/Gloo errors (a dead peer, a timeout, mismatching shapes) become
  // std::runtime_error naming the operation and this rank.
  template <typename Launch>
  void run(const char* op, Launch&& launch) const {
    try {
      auto work = launch();
      work->wait();
    } catch (const std::exception& e) {
      throw std::runtime_error(std::string("ProcessGroup::") + op + ": collective failed on " + where() + ": " +
                               message_of(e));
    }
  }

  void allreduce(const char* op, at::Tensor& t, c10d::ReduceOp::RedOpType reduce) const {
    std::vector<at::Tensor> tensors{t};
    c10d::AllreduceOptions opts;
    opts.reduceOp = c10d::ReduceOp(reduce);
    run(op, [&] { return backend_for(t).allreduce(tensors, opts); });
  }

  void broadcast(const char* op, at::Tensor& t) const {
    std::vector<at::Tensor> tensors{t};
    c10d::BroadcastOptions opts;
    opts.rootRank = 0;
    run(op, [&] { return backend_for(t).broadcast(tensors, opts); });
  }

  // Every rank must pass the same number of tensors with the same total size: a mismatch would make
  // the bucketed collectives pair unrelated tensors (or stall). One int64 MAX-allreduce of
  // [count, numel, -count, -numel] gives the maximum and the minimum over the ranks. `extra` (also
  // MAX-reduced, appended) lets the caller piggyback its own flags on the same collective.
  at::Tensor check_same_layout(const char* op, int64_t count, int64_t numel, const at::Tensor& extra) const {
    auto t = at::cat({at::tensor({count, numel, -count, -numel}, at::kLong), extra.to(at::kLong)});
    allreduce(op, t, c10d::ReduceOp::MAX);
    const auto v = t.accessor<int64_t, 1>();
    if (v[0] != -v[2] || v[1] != -v[3])
      throw std::invalid_argument(std::string("ProcessGroup::") + op +
                                  ": the ranks' modules differ: between " + std::to_string(-v[2]) + " and " +
                                  std::to_string(v[0]) + " tensors, " + std::to_string(-v[3]) + " and " +
                                  std::to_string(v[1]) + " elements (this is " + where() + " with " +
                                  std::to_string(count) + ", " + std::to_string(numel) + ")");
    return t.slice(0, 4);
  }

  // Flattens `tensors` into buckets of about bucket_bytes (one dtype and device per bucket, in
  // order), applies `collective` to each flat bucket and copies the result back into the tensors.
  template <typename Collective>
  void bucketed(const std::vector<at::Tensor>& tensors, Collective&& collective) const {
    using Key = std::pair<at::ScalarType, std::string>;
    struct Bucket {
      std::vector<at::Tensor> tensors;
      int64_t bytes = 0;
    };
    std::map<Key, Bucket> open;
    const auto flush = [&](Bucket& bucket) {
      if (bucket.tensors.empty()) return;
      std::vector<at::Tensor> flat_parts;
      flat_parts.reserve(bucket.tensors.size());
      for (const auto& t : bucket.tensors) flat_parts.push_back(t.reshape({-1}));
      auto flat = at::cat(flat_parts);  // (sum of numel)
      collective(flat);
      int64_t offset = 0;
      for (auto& t : bucket.tensors) {
        t.copy_(flat.slice(0, offset, offset + t.numel()).view(t.sizes()));
        offset += t.numel();
      }
      bucket = Bucket{};
    };
    for (const auto& t : tensors) {
      auto& bucket = open[Key{t.scalar_type(), t.device().str()}];
      const int64_t bytes = t.numel() * static_cast<int64_t>(t.element_size());
      if (!bucket.tensors.empty() && bucket.bytes + bytes > bucket_bytes) flush(bucket);
      bucket.tensors.push_back(t);
      bucket.bytes += bytes;
    }
    for (auto& [key, bucket] : open) flush(bucket);
  }
};

ProcessGroup::ProcessGroup(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ProcessGroup::ProcessGroup(ProcessGroup&&) noexcept = default;
ProcessGroup& ProcessGroup::operator=(ProcessGroup&&) noexcept = default;
ProcessGroup::~ProcessGroup() = default;

int ProcessGroup::rank() const { return impl_->rank; }
int ProcessGroup::world_size() const { return impl_->world_size; }
int ProcessGroup::local_rank() const { return impl_->local_rank; }
const std::string& ProcessGroup::cuda_backend() const { return impl_->cuda_backend; }

// ---- connecting: ProcessGroup::from_environment's steps -----------------------------------------

void ProcessGroup::Impl::read_ranks() {
  const auto world_env = getenv_string("WORLD_SIZE");
  const int64_t world = world_env ? parse_int("WORLD_SIZE", *world_env) : 1;
  if (world < 1 || world > (1 << 20))
    throw std::invalid_argument(std::string(kFrom) + "WORLD_SIZE = " + in_quotes(*world_env) +
                                " must be in [1, 1048576]");
  int64_t r = 0;
  if (world > 1) {
    r = parse_int("RANK", require("RANK", world));
  } else if (auto text = getenv_string("RANK")) {
    r = parse_int("RANK", *text);
  }
  if (r < 0 || r >= world)
    throw std::invalid_argument(std::string(kFrom) + "RANK = " + std::to_string(r) + " must be in [0, WORLD_SIZE = " +
                                std::to_string(world) + ")");
  int64_t local = r;
  if (auto l = getenv_string("LOCAL_RANK")) {
    local = parse_int("LOCAL_RANK", *l);
    if (local < 0 || local >= world)
      throw std::invalid_argument(std::string(kFrom) + "LOCAL_RANK = " + in_quotes(*l) +
                                  " must be in [0, WORLD_SIZE = " + std::to_string(world) + ")");
  }
  rank = static_cast<int>(r);
  world_size = static_cast<int>(world);
  local_rank = static_cast<int>(local);
}

void ProcessGroup::Impl::read_master() {
  master_addr = require("MASTER_ADDR", world_size);
  if (master_addr.empty()) throw std::invalid_argument(std::string(kFrom) + "MASTER_ADDR is empty");
  const std::string port_text = require("MASTER_PORT", world_size);
  const int64_t port = parse_int("MASTER_PORT", port_text);
  if (port < 1 || port > 65535)
    throw std::invalid_argument(std::string(kFrom) + "MASTER_PORT = " + in_quotes(port_text) +
                                " must be in [1, 65535]");
  master_port = static_cast<uint16_t>(port);
  master = "MASTER_ADDR:MASTER_PORT = " + master_addr + ":" + std::to_string(port);
}

std::string ProcessGroup::Impl::choose_cuda_backend(CudaBackend wanted) const {
#ifdef PYRAMIDION_WITH_CUDA
  if (wanted == CudaBackend::gloo) return "gloo";
  const std::string reason = nccl_unusable_reason(local_rank);
  if (reason.empty()) return "nccl";
  if (wanted == CudaBackend::nccl)
    throw std::runtime_error(std::string(kFrom) + "backend \"nccl\" requested on " + where() +
                             " but NCCL is not usable: " + reason);
#else
  if (wanted == CudaBackend::nccl)
    throw std::runtime_error(std::string(kFrom) + "backend \"nccl\" requested on " + where() +
                             " but pyramidion was built without CUDA (PYRAMIDION_WITH_CUDA=OFF)");
#endif
  return "gloo";
}

void ProcessGroup::Impl::rendezvous(std::chrono::steady_clock::time_point deadline, const std::string& timeout_text) {
  // A rank other than 0 first waits, quietly and no longer than the timeout, for rank 0's store.
  if (rank != 0 && !wait_for_listener(master_addr, master_port, deadline))
    throw std::runtime_error(std::string(kFrom) + where() + ": the rendezvous failed within " + timeout_text +
                             ": rank 0 never came (nothing accepted a connection at " + master_addr + ":" +
                             std::to_string(master_port) + "; is rank 0 running, and MASTER_ADDR/MASTER_PORT right?)");
  try {
    const auto timeout = left_until(deadline);
    c10d::TCPStoreOptions store_options;
    store_options.port = master_port;
    store_options.isServer = rank == 0;
    store_options.numWorkers = static_cast<size_t>(world_size);
    store_options.waitWorkers = true;  // rank 0 returns once every rank has connected (or throws)
    store_options.timeout = timeout;
    store = c10::make_intrusive<c10d::TCPStore>(master_addr, store_options);
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string(kFrom) + where() + ": the rendezvous failed within " + timeout_text + " (" +
                             (rank == 0 ? "rank 0 serves the store and waits for every rank"
                                        : "this rank connects to rank 0's store") +
                             "): " + message_of(e));
  }
}

void ProcessGroup::Impl::connect_backends(const std::string& backend, std::chrono::milliseconds timeout,
                                          const std::string& timeout_text) {
#ifdef PYRAMIDION_HAS_GLOO
  // The backends' timeout bounds their connection (every rank has reached the store by now) and
  // every later collective.
  try {
    auto gloo_options = c10d::ProcessGroupGloo::Options::create(timeout);
    const auto lazy = c10d::getDefaultGlooLazyInit();
    if (auto ifname = getenv_string("GLOO_SOCKET_IFNAME"); ifname && !ifname->empty()) {
      gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(*ifname, lazy));
    } else {
      gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice(lazy));
    }
    auto gloo_store = c10::make_intrusive<c10d::PrefixStore>("pyramidion/gloo", store);
    gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(gloo_store, rank, world_size, gloo_options);
#ifdef PYRAMIDION_WITH_CUDA
    if (backend == "nccl") {
      auto nccl_options = c10d::ProcessGroupNCCL::Options::create();
      nccl_options->timeout = timeout;
      auto nccl_store = c10::make_intrusive<c10d::PrefixStore>("pyramidion/nccl", store);
      nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(nccl_store, rank, world_size, nccl_options);
    }
#endif
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string(kFrom) + where() + ": connecting to the other ranks failed within " +
                             timeout_text + ": " + message_of(e));
  }
  cuda_backend = backend;
#else
  throw std::runtime_error(std::string(kFrom) + "this pyramidion was built without the Gloo headers, which the " +
                           "LibTorch wheel does not ship (Debian: apt-get install libgloo-dev, then rebuild " +
                           "with PYRAMIDION_WITH_GLOO); WORLD_SIZE = " + std::to_string(world_size) + " needs them");
#endif
}

ProcessGroup ProcessGroup::from_environment(const DistributedOptions& options) {
  validate(options);
  auto impl = std::make_unique<Impl>();
  impl->bucket_bytes = options.bucket_bytes();
  impl->read_ranks();
  if (impl->world_size == 1) return ProcessGroup(std::move(impl));  // no store, no sockets
  impl->read_master();
  // One deadline for the whole connection: the message's "within N s" is the time it took.
  const auto deadline = std::chrono::steady_clock::now() + options.timeout();
  const std::string timeout_text = std::to_string(options.timeout().count()) + " s";
#ifdef PYRAMIDION_HAS_GLOO  // without Gloo, connect_backends says why before any socket is opened
  const std::string backend = impl->choose_cuda_backend(options.backend());
  impl->rendezvous(deadline, timeout_text);
#else
  const std::string backend = "gloo";
#endif
  impl->connect_backends(backend, std::chrono::duration_cast<std::chrono::milliseconds>(options.timeout()),
                         timeout_text);
  return ProcessGroup(std::move(impl));
}

void ProcessGroup::broadcast_parameters(torch::nn::Module& module) {
  std::vector<at::Tensor> tensors;
  for (const auto& p : module.parameters()) tensors.push_back(p);
  for (const auto& b : module.buffers())
    if (b.defined()) tensors.push_back(b);
  if (impl_->world_size == 1) return;
  int64_t numel = 0;
  for (const auto& t : tensors) numel += t.numel();
  impl_->check_same_layout("broadcast_parameters", static_cast<int64_t>(tensors.size()), numel,
                           at::empty({0}, at::kLong));
  torch::NoGradGuard no_grad;  // in-place writes into leaves that require grad
  impl_->bucketed(tensors, [&](at::Tensor& flat) { impl_->broadcast("broadcast_parameters", flat); });
}

void ProcessGroup::allreduce_gradients(torch::nn::Module& module, double divide_by) {
  if (!std::isfinite(divide_by) || divide_by <= 0)
    throw std::invalid_argument("ProcessGroup::allreduce_gradients: divide_by = " + std::to_string(divide_by) +
                                " must be finite and > 0 (the global number of target tokens)");
  std::vector<at::Tensor> params;
  for (const auto& p : module.parameters())
    if (p.requires_grad()) params.push_back(p);
  for (const auto& p : params)
    if (p.grad().defined() && p.grad().is_sparse())
      throw std::invalid_argument("ProcessGroup::allreduce_gradients: sparse gradients are not supported (a "
                                  "parameter of shape " + detail::format_sizes(p.sizes()) + ")");
  const double scale = 1.0 / divide_by;
  torch::NoGradGuard no_grad;
  if (impl_->world_size == 1) {
    for (auto& p : params)
      if (p.grad().defined()) p.mutable_grad().mul_(scale);
    return;
  }

  // Which parameters have a gradient on some rank: MAX of the local flags.
  auto flags = at::empty({static_cast<int64_t>(params.size())}, at::kLong);
  auto f = flags.accessor<int64_t, 1>();
  int64_t numel = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    f[static_cast<int64_t>(i)] = params[i].grad().defined() ? 1 : 0;
    numel += params[i].numel();
  }
  const auto any = impl_->check_same_layout("allreduce_gradients", static_cast<int64_t>(params.size()), numel, flags);
  const auto a = any.accessor<int64_t, 1>();
  std::vector<at::Tensor> grads;
  for (size_t i = 0; i < params.size(); ++i) {
    if (a[static_cast<int64_t>(i)] == 0) continue;  // no rank has one: stays undefined, as in one process
    auto& p = params[i];
    if (!p.grad().defined()) p.mutable_grad() = at::zeros_like(p, at::MemoryFormat::Contiguous);
    grads.push_back(p.grad());
  }
  impl_->bucketed(grads, [&](at::Tensor& flat) {
    impl_->allreduce("allreduce_gradients", flat, c10d::ReduceOp::SUM);
    flat.mul_(scale);
  });
}

double ProcessGroup::allreduce_sum(double value) {
  if (impl_->world_size == 1) return value;
  auto t = at::full({1}, value, at::kDouble);
  impl_->allreduce("allreduce_sum", t, c10d::ReduceOp::SUM);
  return t.item<double>();
}

void ProcessGroup::check_same(const std::string& who, const std::vector<std::pair<std::string, std::string>>& values) {
  if (impl_->world_size == 1) return;
  // First the number of values (the second collective's shape), then their fingerprints: one
  // int64 MAX-allreduce of [x, -x] gives each one's maximum and minimum over the ranks.
  const auto n = static_cast<int64_t>(values.size());
  auto count = at::tensor({n, -n}, at::kLong);
  impl_->allreduce("check_same", count, c10d::ReduceOp::MAX);
  if (count[0].item<int64_t>() != -count[1].item<int64_t>())
    throw std::invalid_argument(who + ": the ranks compare different numbers of settings (" +
                                std::to_string(-count[1].item<int64_t>()) + " to " +
                                std::to_string(count[0].item<int64_t>()) + "; " + impl_->where() + " has " +
                                std::to_string(n) + "): are they running the same pyramidion?");
  auto prints = at::empty({2 * n}, at::kLong);
  auto p = prints.accessor<int64_t, 1>();
  for (int64_t i = 0; i < n; ++i) {
    p[i] = fingerprint(values[static_cast<size_t>(i)].second);
    p[n + i] = -p[i];
  }
  impl_->allreduce("check_same", prints, c10d::ReduceOp::MAX);
  for (int64_t i = 0; i < n; ++i) {
    if (p[i] == -p[n + i]) continue;
    const auto& [name, value] = values[static_cast<size_t>(i)];
    throw std::invalid_argument(who + ": the ranks were started with different settings: " + name + " is " + value +
                                " on " + impl_->where() + ", and something else on another rank; every rank " +
                                "must run with the same settings and data");
  }
}

void ProcessGroup::barrier() {
  if (impl_->world_size == 1) return;
  impl_->run("barrier", [&] { return impl_->gloo->barrier(c10d::BarrierOptions()); });
}

void ProcessGroup::run_on_main(const std::string& who, const std::string& what, const std::function<void()>& work) {
  std::exception_ptr error;
  if (is_main()) {
    try {
      work();
    } catch (const std::exception&) {
      error = std::current_exception();
    }
  }
  if (allreduce_sum(error ? 1.0 : 0.0) > 0) {
    if (error) std::rethrow_exception(error);  // its own type: bad input stays std::invalid_argument
    throw std::runtime_error(who + ": rank 0 failed while " + what + " (its log says why)");
  }
}

}  // namespace pyramidion
