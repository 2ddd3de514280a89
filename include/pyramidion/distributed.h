// Data-parallel training over PyTorch's c10d: Gloo for CPU tensors, NCCL for CUDA tensors when
// this library is built with CUDA (and its NCCL headers match the runtime's, see
// DistributedOptions::backend).
//
// Every rank holds a full replica of the model and sees its own share of each batch:
//
//   auto group = pyramidion::ProcessGroup::from_environment();   // RANK, WORLD_SIZE, MASTER_*
//   group.broadcast_parameters(*model);                          // every rank starts from rank 0's
//   for each step:
//     loss_sum = sum of token-level cross-entropy over this rank's share (reduction "sum")
//     tokens = group.allreduce_sum(this rank's target tokens)    // the global count
//     loss_sum.backward();
//     group.allreduce_gradients(*model, tokens);                 // sum over ranks, then / tokens
//     optimizer.step();
//
// after which every rank holds the gradient of (sum of every rank's token losses) / (every rank's
// tokens): exactly what one process computes on the combined batch, so every replica takes the same
// step and stays equal to the others. Only rank 0 (is_main()) should write checkpoints and logs.
//
// The launcher (torchrun, scripts/launch_local.sh, a cluster scheduler) sets the environment:
//   WORLD_SIZE   number of processes; absent = a single process (no communication at all)
//   RANK         this process, 0 .. WORLD_SIZE-1
//   MASTER_ADDR  host of rank 0, which serves the rendezvous store (a c10d::TCPStore)
//   MASTER_PORT  its TCP port, 1 .. 65535
//   LOCAL_RANK   this process's index on its machine (the CUDA device to use); default RANK
// Gloo picks its network interface from GLOO_SOCKET_IFNAME when set (as in PyTorch), else the
// machine's hostname.
//
// Building: the PyPI wheel's LibTorch has Gloo compiled in but does not ship Gloo's headers, which
// c10d's ProcessGroupGloo.hpp includes; src/training/distributed.cpp takes them from the system (Debian:
// libgloo-dev). A library built without them works for a single process and throws
// std::runtime_error from from_environment() for WORLD_SIZE > 1, saying so.
//
// Every collective must be called by every rank, in the same order, with tensors of the same
// shapes: allreduce_gradients() makes that true for modules whose parameters only some ranks used
// (see there). c10d types stay out of this header: ProcessGroup is a pimpl.
#pragma once

#include <torch/arg.h>
#include <torch/nn/module.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace pyramidion {

/// Which c10d backend reduces CUDA tensors. CPU tensors (and allreduce_sum, barrier) always go
/// through Gloo.
///   automatic: NCCL when this library was built with CUDA, a CUDA device is present and the NCCL
///              headers it was compiled against have the runtime NCCL's major.minor version; Gloo
///              otherwise (Gloo reduces CUDA tensors through host memory: correct, slower).
///   gloo:      Gloo for every tensor.
///   nccl:      as automatic, but std::runtime_error from from_environment() when NCCL is not usable.
enum class CudaBackend { automatic, gloo, nccl };

struct DistributedOptions {
  using Seconds = std::chrono::seconds;  // TORCH_ARG pastes `const T&`
  /// The backend of CUDA tensors.
  TORCH_ARG(CudaBackend, backend) = CudaBackend::automatic;
  /// Bound on the rendezvous (connecting to MASTER_ADDR:MASTER_PORT and waiting for every rank)
  /// and on every collective: a missing or dead peer ends in std::runtime_error, never a hang; > 0.
  TORCH_ARG(Seconds, timeout) = Seconds(300);
  /// allreduce_gradients() flattens gradients into buckets of about this many bytes, one
  /// allreduce each (a single tensor larger than this gets a bucket of its own); >= 1.
  TORCH_ARG(int64_t, bucket_bytes) = 25 * 1024 * 1024;
};

/// The processes of one data-parallel job, connected at construction.
class ProcessGroup {
 public:
  /// Reads the environment (see the top of this file) and connects to the other ranks: rank 0
  /// serves a TCPStore at MASTER_ADDR:MASTER_PORT, every rank rendezvouses there and joins a Gloo
  /// (and maybe NCCL) process group. WORLD_SIZE absent or 1: a single process (rank 0, size 1; no
  /// store, no sockets; RANK, when set, must be 0).
  /// Throws std::invalid_argument naming the variable and its value for a missing variable
  /// (RANK, MASTER_ADDR or MASTER_PORT when WORLD_SIZE > 1), a value that is not an integer,
  /// WORLD_SIZE < 1, RANK outside [0, WORLD_SIZE), a port outside [1, 65535], a negative
  /// LOCAL_RANK, and for invalid options; std::runtime_error naming MASTER_ADDR:MASTER_PORT and the
  /// rank when the rendezvous or the connection to the peers fails or exceeds options.timeout, and
  /// when options.backend is "nccl" but NCCL is not usable.
  static ProcessGroup from_environment(const DistributedOptions& options = {});

  ProcessGroup(ProcessGroup&&) noexcept;
  ProcessGroup& operator=(ProcessGroup&&) noexcept;
  ~ProcessGroup();

  int rank() const;
  int world_size() const;
  /// LOCAL_RANK (default RANK): the index of the CUDA device this rank should use.
  int local_rank() const;
  /// Rank 0: the only rank that writes checkpoints, logs and outputs.
  bool is_main() const { return rank() == 0; }
  /// Backend used for CUDA tensors: "gloo" or "nccl"; "none" for a single process.
  const std::string& cuda_backend() const;

  /// Copies rank 0's parameters and buffers into every rank's `module` (in place, same tensors),
  /// so that replicas initialised from different seeds start equal. Every rank's module must have
  /// the same parameters and buffers (names, shapes, dtypes, devices), else std::invalid_argument
  /// (what can be checked locally) or std::runtime_error (a mismatch seen by the backend).
  void broadcast_parameters(torch::nn::Module& module);

  /// Sums every parameter's gradient over the ranks, then multiplies it by 1 / divide_by, in place
  /// (p.grad() of every rank then holds the same values).
  ///
  /// Scaling: the trainer sums (not averages) its token-level cross-entropy over its own targets
  /// and passes divide_by = the number of target tokens of ALL ranks (allreduce_sum of the local
  /// counts); the result is then the gradient of the mean loss per token of the combined batch,
  /// whatever the split. (To average per-rank mean losses instead, pass world_size().)
  ///
  /// A parameter that requires grad but whose grad is undefined on some ranks (a module that only
  /// some ranks' inputs reached) gets zeros there before the sum, so that every rank reduces the
  /// same layout; a parameter without a grad on every rank is left without one (as in a single
  /// process). Gradients are flattened into buckets of options.bucket_bytes, one allreduce each.
  /// Single process: only the scaling. Throws std::invalid_argument for divide_by not finite and
  /// > 0 and for sparse gradients; std::runtime_error when a collective fails or times out.
  void allreduce_gradients(torch::nn::Module& module, double divide_by);

  /// The sum of `value` over the ranks (in float64), e.g. token counts or loss sums for logging.
  double allreduce_sum(double value);

  /// Returns once every rank has called it (or throws std::runtime_error after the timeout).
  void barrier();

  /// Checks that every rank holds the same `values` ((name, value as text) pairs, in one order):
  /// throws std::invalid_argument "<who>: the ranks were started with different settings: <name>
  /// is <value> on rank r of n ..." for the first one that differs, on every rank. Compares 62-bit
  /// fingerprints (two small allreduces), so a difference goes unseen with probability ~2^-62. A
  /// collective: every rank calls it, in the same order.
  void check_same(const std::string& who, const std::vector<std::pair<std::string, std::string>>& values);

  /// Runs `work` on rank 0 alone (writing outputs, training a tokenizer) while the other ranks
  /// wait, and tells every rank whether it succeeded: rank 0's exception is thrown on rank 0 as
  /// std::runtime_error with its message, and on every other rank as std::runtime_error "<who>:
  /// rank 0 failed while <what> (its log says why)", instead of leaving them in the next collective
  /// until the timeout. A collective: every rank calls it, in the same order.
  void run_on_main(const std::string& who, const std::string& what, const std::function<void()>& work);

 private:
  struct Impl;
  explicit ProcessGroup(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace pyramidion
