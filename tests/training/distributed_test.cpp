// Tests of ProcessGroup (src/training/distributed.cpp).
//
// The multi-process tests spawn this test binary again (/proc/self/exe) as workers. A worker is
// the test DistributedWorker.<Mode>, registered only in a process whose environment has
// PYRAMIDION_DDP_WORKER=<mode> (see the static registration below), so normal runs, ctest's test
// discovery included, never see it. Every child is waited for with a deadline and killed after it:
// a broken rendezvous fails the test instead of hanging ctest.
//
// Shape legend: b batch, n source tokens, t target positions, v vocabulary size.
#include <pyramidion/config.h>
#include <pyramidion/distributed.h>
#include <pyramidion/model.h>

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/sgd.h>
#include <torch/serialize.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/model_fixtures.h"
#include "util/output_file.h"


namespace {
namespace fs = std::filesystem;
using pyramidion::DistributedOptions;
using pyramidion::ProcessGroup;
using pyramidion_test::error_of;

constexpr const char* kWorkerVariable = "PYRAMIDION_DDP_WORKER";  // the worker's mode
constexpr const char* kOutVariable = "PYRAMIDION_DDP_OUT";        // the directory a worker writes to
constexpr const char* kCudaVariable = "PYRAMIDION_DDP_CUDA";      // set: train on CUDA
const char* const kLauncherVariables[] = {"RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK"};
constexpr int kSteps = 3;
constexpr double kLearningRate = 0.5;

// ---- environment and processes ---------------------------------------------------------------------

// Sets (value) or unsets (nullopt) variables for one scope, restoring the previous values after.
class ScopedEnv {
 public:
  explicit ScopedEnv(const std::vector<std::pair<std::string, std::optional<std::string>>>& vars) {
    for (const auto& [name, value] : vars) {
      const char* old = std::getenv(name.c_str());
      saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
      if (value) ::setenv(name.c_str(), value->c_str(), 1);
      else ::unsetenv(name.c_str());
    }
  }
  ~ScopedEnv() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
      if (it->second) ::setenv(it->first.c_str(), it->second->c_str(), 1);
      else ::unsetenv(it->first.c_str());
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

// Every launcher variable unset, then `vars` set.
ScopedEnv launcher_env(const std::vector<std::pair<std::string, std::string>>& vars) {
  std::vector<std::pair<std::string, std::optional<std::string>>> all;
  for (const char* name : kLauncherVariables) all.emplace_back(name, std::nullopt);
  for (const auto& [name, value] : vars) all.emplace_back(name, value);
  return ScopedEnv(all);
}

// A TCP port that was free a moment ago (the kernel's pick for port 0 on loopback).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("free_port: socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("free_port: bind/getsockname on 127.0.0.1:0 failed");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

struct TempDir {
  fs::path path;
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "pyramidion-ddp-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + pattern);
    path = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    pyramidion::detail::remove_tree(fs::path(path).string());
  }
};

using pyramidion_test::read_text;

struct Child {
  pid_t pid = -1;
  fs::path log;      // its stdout and stderr
  int status = -1;   // waitpid's, once it has exited
  bool killed = false;
};

// Runs this binary as the worker `mode`, with the launcher variables `vars` (and none inherited)
// and its output in dir/<log_name>.
Child spawn_worker(const std::string& mode, const std::vector<std::pair<std::string, std::string>>& vars,
                   const fs::path& dir, const std::string& log_name) {
  std::vector<std::string> extra = {std::string(kWorkerVariable) + "=" + mode,
                                    std::string(kOutVariable) + "=" + dir.string()};
  for (const auto& [name, value] : vars) extra.push_back(name + "=" + value);
  // No launcher variable, CUDA switch or gtest setting of this process is inherited.
  const auto drop = [](const std::string& name) {
    bool drop = name.rfind("GTEST_", 0) == 0 || name == kCudaVariable;
    for (const char* v : kLauncherVariables) drop = drop || name == v;
    return drop;
  };
  Child child;
  child.log = dir / log_name;
  child.pid = pyramidion_test::spawn_process(fs::read_symlink("/proc/self/exe").string(),
                                             {"--gtest_filter=DistributedWorker." + mode},
                                             pyramidion_test::environment_with(extra, drop), child.log);
  return child;
}

// Waits for every child; when one fails, or at the deadline, kills the ones still running.
void wait_all(std::vector<Child>& children, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  size_t running = children.size();
  bool kill_rest = false;
  while (running > 0) {
    for (auto& c : children) {
      if (c.status != -1) continue;
      int status = 0;
      if (::waitpid(c.pid, &status, WNOHANG) == c.pid) {
        c.status = status;
        --running;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) kill_rest = true;
      }
    }
    if (running == 0) break;
    if (kill_rest || std::chrono::steady_clock::now() > deadline) {
      for (auto& c : children) {
        if (c.status != -1) continue;
        ::kill(c.pid, SIGKILL);
        ::waitpid(c.pid, &c.status, 0);
        c.killed = true;
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

bool succeeded(const Child& c) { return !c.killed && WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0; }

std::string describe(const Child& c) {
  std::string how = c.killed ? "was killed (deadline, or a sibling failed)"
                             : WIFEXITED(c.status) ? "exited with " + std::to_string(WEXITSTATUS(c.status))
                                                   : "died of signal " + std::to_string(WTERMSIG(c.status));
  return "worker " + c.log.filename().string() + " " + how + "; its output:\n" + read_text(c.log);
}

// ---- the training run that one process and two processes must agree on ---------------------------

pyramidion::ModelConfig tiny_config() {
  auto config = pyramidion_test::preset("tiny-deep-pyramidion");  // blockwise attention + 2 poolers
  config.dropout = 0.0;
  config.attention_dropout = 0.0;
  return config;
}

// Four documents of different lengths, one padded width for all (the shards keep it).
struct Batch {
  at::Tensor src;       // (b, n) int64
  at::Tensor src_mask;  // (b, n) bool
  at::Tensor tgt_in;    // (b, t) int64: bos, then the target shifted right
  at::Tensor tgt_out;   // (b, t) int64: the target, pad after its end

  Batch rows(int64_t begin, int64_t end) const {
    return {src.slice(0, begin, end), src_mask.slice(0, begin, end), tgt_in.slice(0, begin, end),
            tgt_out.slice(0, begin, end)};
  }
  Batch to(at::Device device) const { return {src.to(device), src_mask.to(device), tgt_in.to(device), tgt_out.to(device)}; }
};

Batch fixed_batch() {
  at::manual_seed(1234);
  Batch batch;
  batch.src_mask = pyramidion_test::lengths_mask({40, 31, 22, 37}, 40);  // (b, n)
  batch.src = pyramidion_test::random_ids(batch.src_mask);                 // (b, n)
  const auto tgt_mask = pyramidion_test::lengths_mask({10, 7, 9, 5}, 10);  // (b, t)
  batch.tgt_out = pyramidion_test::random_ids(tgt_mask);                   // (b, t)
  batch.tgt_in = at::cat({at::full({4, 1}, 1, at::kLong), batch.tgt_out.slice(1, 0, -1)}, 1);  // (b, t)
  return batch;
}

// kSteps of SGD with momentum on `batch`: the loss is summed over target tokens and the gradient
// divided by the tokens of every rank, as the trainer does.
void train(pyramidion::Seq2Seq& model, const Batch& batch, ProcessGroup& group) {
  torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(kLearningRate).momentum(0.9));
  const int64_t v = model->config().vocab_size;
  for (int step = 0; step < kSteps; ++step) {
    optimizer.zero_grad();
    const auto logits = model->forward(batch.src, batch.src_mask, batch.tgt_in);  // (b, t, v)
    const auto loss_sum = at::cross_entropy_loss(logits.reshape({-1, v}), batch.tgt_out.reshape({-1}), {},
                                                 at::Reduction::Sum, /*ignore_index=*/0);
    const double tokens = group.allreduce_sum(batch.tgt_out.ne(0).sum().item<double>());
    loss_sum.backward();
    group.allreduce_gradients(*model, tokens);
    optimizer.step();
  }
}

std::vector<at::Tensor> parameters_of(const pyramidion::Seq2Seq& model) {
  std::vector<at::Tensor> out;
  for (const auto& p : model->parameters()) out.push_back(p.detach().to(at::kCPU, /*non_blocking=*/false, /*copy=*/true));
  return out;
}

double max_abs_diff(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  if (a.size() != b.size()) throw std::runtime_error("max_abs_diff: different numbers of tensors");
  double diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff = std::max(diff, (a[i] - b[i]).abs().max().item<double>());
  return diff;
}

// Three Linear(4, 3): every rank uses `used`, rank 0 alone uses `rank0_only`, nobody `unused`.
struct ThreeLinear : torch::nn::Module {
  torch::nn::Linear used{nullptr}, rank0_only{nullptr}, unused{nullptr};
  ThreeLinear() {
    used = register_module("used", torch::nn::Linear(4, 3));
    rank0_only = register_module("rank0_only", torch::nn::Linear(4, 3));
    unused = register_module("unused", torch::nn::Linear(4, 3));
  }
};

at::Tensor input_of_rank(int rank) { return at::arange(8, at::kFloat).view({2, 4}) * (rank + 1) / 10; }  // (2, 4)

// ---- the workers --------------------------------------------------------------------------------

// Mode "Train": a rank of the 2-process run. Builds the model from its own seed (broadcast must
// fix that), trains on its half of the batch and writes its parameters to $PYRAMIDION_DDP_OUT.
// With $PYRAMIDION_DDP_CUDA set, on CUDA device LOCAL_RANK % devices (through Gloo when the two
// ranks share one device: NCCL refuses that).
void train_worker() {
  at::set_num_threads(1);  // the machine's cores are shared with the other rank and the parent
  const bool cuda = std::getenv(kCudaVariable) != nullptr;
  const auto devices = static_cast<int>(torch::cuda::device_count());
  DistributedOptions options;
  options.timeout(std::chrono::seconds(60));
  options.bucket_bytes(64 * 1024);  // several buckets for the tiny model
  if (cuda && devices < 2) options.backend(pyramidion::CudaBackend::gloo);
  auto group = ProcessGroup::from_environment(options);
  const at::Device device = cuda ? at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(group.local_rank() % devices))
                                 : at::Device(at::kCPU);
  ASSERT_EQ(group.world_size(), 2);
  ASSERT_EQ(group.rank(), std::atoi(std::getenv("RANK")));
  EXPECT_EQ(group.local_rank(), group.rank());
  EXPECT_EQ(group.is_main(), group.rank() == 0);
  EXPECT_TRUE(group.cuda_backend() == "gloo" || group.cuda_backend() == "nccl") << group.cuda_backend();
  const fs::path out = std::getenv(kOutVariable);

  at::manual_seed(100 + group.rank());
  pyramidion::Seq2Seq model(tiny_config());
  model->to(device);
  group.broadcast_parameters(*model);
  const int64_t half = 2;
  train(model, fixed_batch().rows(group.rank() * half, (group.rank() + 1) * half).to(device), group);
  torch::save(parameters_of(model), (out / ("rank" + std::to_string(group.rank()) + ".pt")).string());

  // A parameter only rank 0 used gets rank 1's zeros; one nobody used keeps no gradient.
  at::manual_seed(7);
  ThreeLinear m;
  const auto x = input_of_rank(group.rank());  // (2, 4)
  auto loss = m.used->forward(x).sum();
  if (group.rank() == 0) loss = loss + m.rank0_only->forward(x).sum();
  loss.backward();
  group.allreduce_gradients(m, 2.0);
  // d(sum(W x + b))/dW = column sums of x for every output row; d/db = the batch size, 2.
  const auto colsum = [](const at::Tensor& x) { return x.sum(0).unsqueeze(0).expand({3, 4}); };
  EXPECT_TRUE(at::allclose(m.used->weight.grad(), (colsum(input_of_rank(0)) + colsum(input_of_rank(1))) / 2));
  EXPECT_TRUE(at::allclose(m.used->bias.grad(), at::full({3}, 2.0)));
  ASSERT_TRUE(m.rank0_only->weight.grad().defined());
  EXPECT_TRUE(at::allclose(m.rank0_only->weight.grad(), colsum(input_of_rank(0)) / 2));
  EXPECT_TRUE(at::allclose(m.rank0_only->bias.grad(), at::full({3}, 1.0)));
  EXPECT_FALSE(m.unused->weight.grad().defined());
  EXPECT_FALSE(m.unused->bias.grad().defined());

  EXPECT_DOUBLE_EQ(group.allreduce_sum(group.rank() + 0.5), 2.0);  // 0.5 + 1.5
  group.barrier();
}

// Mode "Lonely": a rank whose peer never comes. from_environment must throw std::runtime_error
// within its 3 s timeout; the message goes to $PYRAMIDION_DDP_OUT/lonely<rank>.txt.
void lonely_worker() {
  DistributedOptions options;
  options.timeout(std::chrono::seconds(3));
  const auto start = std::chrono::steady_clock::now();
  const std::string message = error_of<std::runtime_error>([&] { ProcessGroup::from_environment(options); });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 30.0) << message;
  const auto out = fs::path(std::getenv(kOutVariable));
  std::ofstream(out / ("lonely" + std::string(std::getenv("RANK")) + ".txt")) << message;
  std::ofstream(out / ("lonely" + std::string(std::getenv("RANK")) + ".seconds")) << seconds;
}

class WorkerTest : public testing::Test {
 public:
  explicit WorkerTest(void (*body)()) : body_(body) {}
  void TestBody() override { body_(); }

 private:
  void (*body_)();
};

// Registers DistributedWorker.<mode> in worker processes only.
[[maybe_unused]] const bool kWorkerRegistered = [] {
  const char* mode = std::getenv(kWorkerVariable);
  if (mode == nullptr) return false;
  void (*body)() = std::string(mode) == "Train" ? train_worker : std::string(mode) == "Lonely" ? lonely_worker : nullptr;
  if (body == nullptr) return false;
  testing::RegisterTest("DistributedWorker", mode, nullptr, nullptr, __FILE__, __LINE__,
                        [body]() -> WorkerTest* { return new WorkerTest(body); });
  return true;
}();

// ---- single process and argument checks -------------------------------------------------------------

TEST(DistributedEnvironment, NoVariablesIsASingleProcess) {
  const auto env = launcher_env({});
  auto group = ProcessGroup::from_environment();
  EXPECT_EQ(group.rank(), 0);
  EXPECT_EQ(group.world_size(), 1);
  EXPECT_EQ(group.local_rank(), 0);
  EXPECT_TRUE(group.is_main());
  EXPECT_EQ(group.cuda_backend(), "none");
  EXPECT_EQ(group.allreduce_sum(2.5), 2.5);
  group.barrier();

  // Broadcast changes nothing; allreduce_gradients only scales.
  at::manual_seed(7);
  ThreeLinear m;
  const auto before = m.used->weight.detach().clone();
  group.broadcast_parameters(m);
  EXPECT_TRUE(at::equal(m.used->weight, before));
  m.used->forward(input_of_rank(0)).sum().backward();
  const auto grad = m.used->weight.grad().clone();
  group.allreduce_gradients(m, 4.0);
  EXPECT_TRUE(at::allclose(m.used->weight.grad(), grad / 4));
  EXPECT_FALSE(m.unused->weight.grad().defined());
}

TEST(DistributedEnvironment, WorldSizeOneIsASingleProcess) {
  const auto env = launcher_env({{"WORLD_SIZE", "1"}, {"RANK", "0"}, {"LOCAL_RANK", "0"}});
  auto group = ProcessGroup::from_environment();
  EXPECT_EQ(group.world_size(), 1);
  EXPECT_EQ(group.rank(), 0);
}

TEST(DistributedEnvironment, InvalidValuesNameTheVariable) {
  const std::vector<std::pair<std::string, std::string>> base = {
      {"WORLD_SIZE", "2"}, {"RANK", "1"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "29500"}};
  // (variable, value or "" to unset it, text the message must contain)
  const std::vector<std::tuple<std::string, std::optional<std::string>, std::string>> cases = {
      {"WORLD_SIZE", "two", "WORLD_SIZE = \"two\" is not an integer"},
      {"WORLD_SIZE", "", "WORLD_SIZE = \"\" is not an integer"},
      {"WORLD_SIZE", "0", "WORLD_SIZE = \"0\" must be in [1, 1048576]"},
      {"WORLD_SIZE", "-3", "WORLD_SIZE = \"-3\""},
      {"RANK", "2", "RANK = 2 must be in [0, WORLD_SIZE = 2)"},
      {"RANK", "-1", "RANK = -1 must be in [0, WORLD_SIZE = 2)"},
      {"RANK", "1x", "RANK = \"1x\" is not an integer"},
      {"RANK", std::nullopt, "RANK is not set"},
      {"MASTER_ADDR", std::nullopt, "MASTER_ADDR is not set"},
      {"MASTER_ADDR", "", "MASTER_ADDR is empty"},
      {"MASTER_PORT", std::nullopt, "MASTER_PORT is not set"},
      {"MASTER_PORT", "70000", "MASTER_PORT = \"70000\" must be in [1, 65535]"},
      {"MASTER_PORT", "0", "MASTER_PORT = \"0\" must be in [1, 65535]"},
      {"MASTER_PORT", "http", "MASTER_PORT = \"http\" is not an integer"},
      {"LOCAL_RANK", "-1", "LOCAL_RANK = \"-1\" must be in [0, WORLD_SIZE = 2)"},
  };
  for (const auto& [name, value, expected] : cases) {
    const auto env = launcher_env(base);
    const ScopedEnv change({{name, value}});
    const auto message = error_of<std::invalid_argument>([] { ProcessGroup::from_environment(); });
    EXPECT_NE(message.find(expected), std::string::npos)
        << name << " = " << value.value_or("(unset)") << ": " << message;
  }
  // A single process checks RANK too.
  const auto env = launcher_env({{"RANK", "1"}});
  EXPECT_NE(error_of<std::invalid_argument>([] { ProcessGroup::from_environment(); })
                .find("RANK = 1 must be in [0, WORLD_SIZE = 1)"),
            std::string::npos);
}

TEST(DistributedEnvironment, InvalidOptions) {
  const auto env = launcher_env({});
  DistributedOptions backend;
  backend.backend(static_cast<pyramidion::CudaBackend>(7));
  EXPECT_NE(error_of<std::invalid_argument>([&] { ProcessGroup::from_environment(backend); })
                .find("DistributedOptions.backend = 7 must be automatic, gloo or nccl"),
            std::string::npos);
  DistributedOptions timeout;
  timeout.timeout(std::chrono::seconds(0));
  EXPECT_NE(error_of<std::invalid_argument>([&] { ProcessGroup::from_environment(timeout); })
                .find("DistributedOptions.timeout = 0 s"),
            std::string::npos);
  DistributedOptions bucket;
  bucket.bucket_bytes(0);
  EXPECT_NE(error_of<std::invalid_argument>([&] { ProcessGroup::from_environment(bucket); })
                .find("DistributedOptions.bucket_bytes = 0"),
            std::string::npos);
}

TEST(DistributedEnvironment, NcclWithoutCudaIsAnEnvironmentError) {
  if (at::hasCUDA()) GTEST_SKIP() << "a CUDA device is present";
  const auto env = launcher_env({{"WORLD_SIZE", "2"}, {"RANK", "1"}, {"MASTER_ADDR", "127.0.0.1"},
                                 {"MASTER_PORT", "29500"}});
  DistributedOptions options;
  options.backend(pyramidion::CudaBackend::nccl);
  const auto message = error_of<std::runtime_error>([&] { ProcessGroup::from_environment(options); });
  EXPECT_NE(message.find("backend \"nccl\" requested on rank 1 of 2 (MASTER_ADDR:MASTER_PORT = 127.0.0.1:29500)"),
            std::string::npos)
      << message;
}

TEST(DistributedAllreduceGradients, RejectsAnInvalidDivisor) {
  const auto env = launcher_env({});
  auto group = ProcessGroup::from_environment();
  ThreeLinear m;
  for (double d : {0.0, -1.0, std::nan(""), HUGE_VAL}) {
    const auto message = error_of<std::invalid_argument>([&] { group.allreduce_gradients(m, d); });
    EXPECT_NE(message.find("ProcessGroup::allreduce_gradients: divide_by = "), std::string::npos) << message;
  }
}

// ---- two processes on loopback --------------------------------------------------------------------

// Two workers on halves of the batch against this process on the whole batch, on the CPU or on
// CUDA device 0 (`cuda`); `tolerance` bounds the max abs difference of the final weights.
void check_two_processes_match_one(bool cuda, double tolerance) {
  const TempDir dir;
  const std::string port = std::to_string(free_port());
  std::vector<Child> children;
  for (int rank = 0; rank < 2; ++rank) {
    std::vector<std::pair<std::string, std::string>> vars = {
        {"RANK", std::to_string(rank)}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", port}};
    if (cuda) vars.emplace_back(kCudaVariable, "1");
    children.push_back(spawn_worker("Train", vars, dir.path, "rank" + std::to_string(rank) + ".log"));
  }

  // Meanwhile the reference: one process, the whole batch, rank 0's initial weights.
  const at::Device device = cuda ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU);
  std::vector<at::Tensor> reference;
  {
    const auto env = launcher_env({});
    auto single = ProcessGroup::from_environment();
    at::manual_seed(100);
    pyramidion::Seq2Seq model(tiny_config());
    model->to(device);
    train(model, fixed_batch().to(device), single);
    reference = parameters_of(model);
  }

  wait_all(children, std::chrono::seconds(120));
  for (const auto& c : children) ASSERT_TRUE(succeeded(c)) << describe(c);
  std::vector<at::Tensor> rank0, rank1;
  torch::load(rank0, (dir.path / "rank0.pt").string());
  torch::load(rank1, (dir.path / "rank1.pt").string());
  const double diff0 = max_abs_diff(rank0, reference), diff1 = max_abs_diff(rank1, reference);
  const double between = max_abs_diff(rank0, rank1);
  std::cout << "[ DDP      ] " << device << ": max |2 processes - 1 process| after " << kSteps
            << " steps: rank 0 " << diff0 << ", rank 1 " << diff1 << "; between the ranks " << between << "\n";
  EXPECT_LE(diff0, tolerance);
  EXPECT_LE(diff1, tolerance);
  // Both ranks apply the same reduced gradients to the same weights (exactly, on the CPU).
  EXPECT_LE(between, cuda ? tolerance : 0.0);
  EXPECT_GT(max_abs_diff(reference, [] {
              at::manual_seed(100);
              return parameters_of(pyramidion::Seq2Seq(tiny_config()));
            }()),
            1e-3);  // the steps did move the weights
}

TEST(DistributedTwoProcesses, MatchOneProcessOnTheCombinedBatch) {
  // fp32; the halves' matmuls sum in another order than the whole batch's (observed: 1.2e-7).
  check_two_processes_match_one(/*cuda=*/false, 1e-5);
}

TEST(DistributedTwoProcesses, MatchOneProcessOnTheCombinedBatchOnCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  // fp32 on CUDA: cuBLAS picks kernels by shape, so the halves and the whole batch differ more.
  check_two_processes_match_one(/*cuda=*/true, 1e-4);
}

TEST(DistributedTwoProcesses, MissingPeerFailsWithinTheTimeout) {
  // Rank 0 serving a store nobody joins, and rank 1 connecting to a store nobody serves.
  const TempDir dir;
  std::vector<Child> children;
  std::vector<std::string> ports;
  for (int rank = 0; rank < 2; ++rank) {
    ports.push_back(std::to_string(free_port()));
    children.push_back(spawn_worker("Lonely",
                                    {{"RANK", std::to_string(rank)}, {"WORLD_SIZE", "2"},
                                     {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", ports.back()}},
                                    dir.path, "lonely" + std::to_string(rank) + ".log"));
  }
  wait_all(children, std::chrono::seconds(60));
  for (int rank = 0; rank < 2; ++rank) {
    ASSERT_TRUE(succeeded(children[rank])) << describe(children[rank]);
    const auto message = read_text(dir.path / ("lonely" + std::to_string(rank) + ".txt"));
    EXPECT_NE(message.find("rank " + std::to_string(rank) + " of 2 (MASTER_ADDR:MASTER_PORT = 127.0.0.1:" +
                           ports[rank] + ")"),
              std::string::npos)
        << message;
    EXPECT_NE(message.find("within 3 s"), std::string::npos) << message;
    // c10d's own errors carry C++ backtraces (about 45 lines of them per rank): none reaches the log.
    const auto log = read_text(dir.path / ("lonely" + std::to_string(rank) + ".log"));
    EXPECT_EQ(log.find("frame #"), std::string::npos) << log;
    EXPECT_EQ(log.find("Exception raised from"), std::string::npos) << log;
  }
  // The rank waiting for a rank 0 that never comes gives up when its message says, not after 2.1
  // to 2.4 times that (c10d's client retried past its timeout).
  const double waited = std::stod(read_text(dir.path / "lonely1.seconds"));
  EXPECT_GE(waited, 2.9);
  EXPECT_LT(waited, 4.5) << "rank 1 gave up after " << waited << " s with a timeout of 3 s";
  EXPECT_NE(read_text(dir.path / "lonely1.txt").find("rank 0 never came"), std::string::npos);
}

}  // namespace
