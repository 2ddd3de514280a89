// The kernels' team programs on real threads, without LibTorch, so that it also runs under
// ThreadSanitizer (scripts/sanitize.sh builds it with -fsanitize=thread). Checks, bit for bit
// against the team of one (kernels::SerialTeam, itself checked against the CPU kernels by
// tests/ops/tournament_program_test.cpp):
//   - the tournament and the tree backward of src/ops/tournament_program.h run by ThreadTeams of
//     3, 32, 33, 128 and 256 threads, over n from 1 to 257, k in {1, n/3, n-1, n}, three mask kinds,
//     keep_order, both sort placements (in the scratch; apart, as the CUDA kernel puts them in
//     shared memory), float and double, outputs pre-filled with two byte patterns (an element that
//     nobody writes shows as a mismatch);
//   - the same through cuda/topk_kernels.cu's real launchers, compiled for the CPU (cuda/emulation/:
//     a block's threads on OS threads, its sums by warp shuffles and shared memory).
//
//   team_programs [--quick]           the sweep (--quick: fewer shapes, for sanitizer builds)
//   team_programs --count-syncs       the barriers (sync() calls) of the fault run, one shape
//   team_programs --drop-sync J       the fault run with barrier J removed: must fail (a mismatch,
//                                     or a race that ThreadSanitizer reports)
//
// Exit status: 0 every result equal; 1 a mismatch (each is printed); 2 bad arguments.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cuda/topk_kernels.h"
#include "ops/tournament_program.h"
#include "support/thread_team.h"

namespace {

namespace kernels = pyramidion::kernels;
using pyramidion_test::ThreadTeam;

int failures = 0;
void* dropped_at = nullptr;  // the code address after the removed barrier (--drop-sync)

void fail(const std::string& what) {
  if (++failures <= 20) std::fprintf(stderr, "MISMATCH %s\n", what.c_str());
}

// Runs body(team) with a team of `size`: SerialTeam for 1, else that many threads. Returns the
// calls of sync() (of rank 0; 0 for the serial team).
template <class Body>
int64_t with_team(int64_t size, Body body, int64_t drop_sync = -1) {
  if (size == 1) {
    kernels::SerialTeam team;
    body(team);
    return 0;
  }
  void* at = nullptr;
  const int64_t syncs = ThreadTeam::run(size, [&](ThreadTeam::Member& team) { body(team); }, drop_sync, &at);
  if (at) dropped_at = at;
  return syncs;
}

/// One batch's tournament inputs.
template <typename T>
struct Inputs {
  int64_t b, n, k;
  bool keep_order;
  std::vector<T> scores;         // (b, n), padding 0
  std::vector<unsigned char> mask;  // (b, n) bool
  const bool* mask_ptr() const { return reinterpret_cast<const bool*>(mask.data()); }
};

// Scores with ties (multiples of 1/7), mask kind 0 all real, 1 lengths n, n/2, 0, 1, ..., 2 scattered.
template <typename T>
Inputs<T> make_inputs(std::mt19937& rng, int64_t b, int64_t n, int64_t k, int mask_kind, bool keep_order) {
  Inputs<T> in{b, n, k, keep_order, std::vector<T>(b * n), std::vector<unsigned char>(b * n)};
  std::uniform_int_distribution<int> tie(0, 6);
  std::uniform_real_distribution<double> u(0, 1);
  for (int64_t e = 0; e < b; ++e) {
    const int64_t length = std::vector<int64_t>{n, n / 2, 0, 1}[e % 4];
    for (int64_t i = 0; i < n; ++i) {
      const bool real = mask_kind == 0 ? true : mask_kind == 1 ? i < length : u(rng) < 0.6;
      in.mask[e * n + i] = real;
      in.scores[e * n + i] = real ? static_cast<T>(tie(rng)) / 7 : T(0);
    }
  }
  return in;
}

/// A tournament's outputs (tournament.h's tree layout), owned, every byte set to a pattern first.
template <typename T>
struct Outputs {
  Outputs(int64_t b, const kernels::TournamentShape& s, unsigned char pattern) {
    const int64_t k = s.k, L = s.leaves, n = s.n;
    auto bytes = [pattern](std::vector<unsigned char>& v, int64_t size) { v.assign(size, pattern); };
    bytes(leaf_index, b * k * L * 8);
    bytes(leaf_coef, b * k * L * int64_t(sizeof(T)));
    weight.resize(s.rounds);
    score.resize(s.rounds + 1);
    for (int64_t h = 1; h <= s.rounds; ++h) bytes(weight[h - 1], b * k * (L >> h) * int64_t(sizeof(T)));
    for (int64_t h = 0; h <= s.rounds; ++h) bytes(score[h], b * k * (L >> h) * int64_t(sizeof(T)));
    bytes(out_mask, b * k);
    bytes(winner, b * k * 8);
    bytes(input_leaf, b * n * 8);
    bytes(input_row, b * n * 8);
  }
  kernels::TournamentOutputs<T> pointers() {
    kernels::TournamentOutputs<T> out;
    out.leaf_index = reinterpret_cast<int64_t*>(leaf_index.data());
    out.leaf_coef = reinterpret_cast<T*>(leaf_coef.data());
    for (size_t h = 0; h < weight.size(); ++h) out.weight[h] = reinterpret_cast<T*>(weight[h].data());
    for (size_t h = 0; h < score.size(); ++h) out.score[h] = reinterpret_cast<T*>(score[h].data());
    out.out_mask = reinterpret_cast<bool*>(out_mask.data());
    out.winner = reinterpret_cast<int64_t*>(winner.data());
    out.input_leaf = reinterpret_cast<int64_t*>(input_leaf.data());
    out.input_row = reinterpret_cast<int64_t*>(input_row.data());
    return out;
  }
  // Bit for bit; names the first differing output.
  void expect_same(const Outputs& o, const std::string& what) const {
    auto same = [&](const std::vector<unsigned char>& a, const std::vector<unsigned char>& b, const std::string& name) {
      if (a != b) fail(what + ": " + name);
    };
    same(leaf_index, o.leaf_index, "leaf_index");
    same(leaf_coef, o.leaf_coef, "leaf_coef");
    for (size_t h = 0; h < weight.size(); ++h) same(weight[h], o.weight[h], "weight " + std::to_string(h + 1));
    for (size_t h = 0; h < score.size(); ++h) same(score[h], o.score[h], "score " + std::to_string(h));
    same(out_mask, o.out_mask, "out_mask");
    same(winner, o.winner, "winner");
    same(input_leaf, o.input_leaf, "input_leaf");
    same(input_row, o.input_row, "input_row");
  }
  std::vector<unsigned char> leaf_index, leaf_coef, out_mask, winner, input_leaf, input_row;
  std::vector<std::vector<unsigned char>> weight, score;
};

// The tournament by a team of `team` (each example with its own scratch, as each CUDA block has);
// sort_apart: the sort's pairs in a buffer of their own, reused from example to example with no
// barrier between them (the first writes of the next example's pairs follow its sums, barriers).
template <typename T>
int64_t team_tournament(const Inputs<T>& in, int64_t team, bool sort_apart, Outputs<T>& out, int64_t drop_sync = -1) {
  const auto shape = kernels::tournament_shape(in.n, in.k);
  const int64_t bytes = kernels::tournament_scratch_bytes<T>(shape, !sort_apart), P = kernels::pow2_at_least(in.n);
  std::vector<unsigned char> scratch(in.b * bytes + 16, 0xCD);
  unsigned char* base = scratch.data() + (16 - reinterpret_cast<uintptr_t>(scratch.data()) % 16) % 16;
  std::vector<kernels::UnsignedOf<T>> key(P);
  std::vector<int32_t> pos(P);
  const auto pointers = out.pointers();
  return with_team(
      team,
      [&](auto& t) {
        for (int64_t e = 0; e < in.b; ++e) {
          auto ws = kernels::tournament_scratch_at<T>(base + e * bytes, shape, !sort_apart);
          if (sort_apart) {
            ws.key = key.data();
            ws.pos = pos.data();
          }
          kernels::tournament_example(t, e, in.scores.data(), in.mask_ptr(), shape, static_cast<T>(std::log(20.0)),
                                      in.keep_order, ws, pointers);
        }
      },
      drop_sync);
}

/// The tree backward's inputs, from a tournament's outputs, and its result leaf_sigma (b*k, L).
template <typename T>
struct Backward {
  Backward(Outputs<T>& tree, const kernels::TournamentShape& s, int64_t b, std::mt19937& rng)
      : R(s.rounds), L(s.leaves), trees(b * s.k), dots(trees * L), grad_scores(trees) {
    std::normal_distribution<double> normal;
    for (auto& v : dots) v = static_cast<T>(normal(rng));
    for (auto& v : grad_scores) v = static_cast<T>(normal(rng));
    const auto p = tree.pointers();
    for (int64_t h = 0; h < R; ++h) weight[h] = p.weight[h];
    for (int64_t h = 0; h <= R; ++h) score[h] = p.score[h];
  }
  int64_t R, L, trees;
  std::vector<T> dots, grad_scores;
  const T* weight[kernels::kMaxRounds] = {};
  const T* score[kernels::kMaxRounds + 1] = {};
};

template <typename T>
std::vector<T> team_tree_backward(const Backward<T>& in, int64_t team, unsigned char pattern, int64_t drop_sync = -1,
                                  int64_t* syncs = nullptr) {
  std::vector<T> leaf_sigma(in.trees * in.L);
  std::memset(leaf_sigma.data(), pattern, leaf_sigma.size() * sizeof(T));
  std::vector<T> q(2 * in.L), rho(2 * in.L), sigma(2 * in.L);
  const int64_t calls = with_team(
      team,
      [&](auto& t) {
        for (int64_t tree = 0; tree < in.trees; ++tree) {
          kernels::tree_backward_tree(t, tree, in.R, in.weight, in.score, in.dots.data(), in.grad_scores.data(),
                                      static_cast<T>(std::log(20.0)), q.data(), rho.data(), sigma.data(),
                                      leaf_sigma.data());
        }
      },
      drop_sync);
  if (syncs) *syncs = calls;
  return leaf_sigma;
}

template <typename T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

// The tournament and the tree backward through the kernel file's launchers (emulated), against
// the team of one.
template <typename T>
void check_emulated(const Inputs<T>& in, Outputs<T>& one, const Backward<T>& backward,
                    const std::vector<T>& one_sigma, const std::string& what) {
  const auto shape = kernels::tournament_shape(in.n, in.k);
  Outputs<T> out(in.b, shape, 0x77);
  const int64_t stride = pyramidion::cuda::tournament_workspace_bytes<T>(shape);
  std::vector<unsigned char> workspace(in.b * stride + 16, 0xCD);
  unsigned char* base = workspace.data() + (16 - reinterpret_cast<uintptr_t>(workspace.data()) % 16) % 16;
  if (pyramidion::cuda::tournament<T>(in.scores.data(), in.mask_ptr(), shape, static_cast<T>(std::log(20.0)),
                                      in.keep_order, in.b, base, out.pointers(), nullptr) != cudaSuccess)
    fail(what + ": the emulated tournament's launch failed");
  one.expect_same(out, what + " emulated tournament");
  pyramidion::cuda::TreeLevels<T> levels;
  for (int64_t h = 0; h < backward.R; ++h) levels.weight[h] = backward.weight[h];
  for (int64_t h = 0; h <= backward.R; ++h) levels.score[h] = backward.score[h];
  std::vector<T> scratch(backward.trees * 6 * backward.L), leaf_sigma(backward.trees * backward.L);
  std::vector<T> grad(in.b * in.n);
  std::memset(leaf_sigma.data(), 0x77, leaf_sigma.size() * sizeof(T));
  std::memset(grad.data(), 0x77, grad.size() * sizeof(T));
  const auto ptr = one.pointers();
  if (pyramidion::cuda::tree_backward<T>(levels, backward.R, backward.dots.data(), backward.grad_scores.data(),
                                         ptr.input_leaf, static_cast<T>(std::log(20.0)), in.b, in.n, in.k,
                                         scratch.data(), leaf_sigma.data(), grad.data(), nullptr) != cudaSuccess)
    fail(what + ": the emulated tree backward's launch failed");
  if (!same_bits(leaf_sigma, one_sigma)) fail(what + " emulated tree backward");
  // Each input's gradient is its leaf's sigma (0 for padding).
  for (int64_t e = 0; e < in.b; ++e)
    for (int64_t p = 0; p < in.n; ++p) {
      const int64_t leaf = ptr.input_leaf[e * in.n + p];
      const T expected = leaf >= 0 ? one_sigma[e * in.k * backward.L + leaf] : T(0);
      if (std::memcmp(&grad[e * in.n + p], &expected, sizeof(T)) != 0) {
        fail(what + " emulated leaves to inputs at " + std::to_string(e) + "," + std::to_string(p));
        return;
      }
    }
}

template <typename T>
void check_shape(std::mt19937& rng, const std::vector<int64_t>& teams, int64_t b, int64_t n, int64_t k, int mask_kind,
                 bool keep_order, bool emulated) {
  const std::string what = std::string(sizeof(T) == 4 ? "float" : "double") + " b=" + std::to_string(b) +
                           " n=" + std::to_string(n) + " k=" + std::to_string(k) + " mask " +
                           std::to_string(mask_kind) + (keep_order ? " keep_order" : "");
  const auto in = make_inputs<T>(rng, b, n, k, mask_kind, keep_order);
  const auto shape = kernels::tournament_shape(n, k);
  Outputs<T> one(b, shape, 0x00);
  team_tournament(in, 1, false, one);
  const Backward<T> backward(one, shape, b, rng);
  const auto one_sigma = team_tree_backward(backward, 1, 0x00);
  for (size_t i = 0; i < teams.size(); ++i) {
    const int64_t team = teams[i];
    const bool sort_apart = (i + n) % 2 == 1;
    const std::string who = what + " team " + std::to_string(team) + (sort_apart ? " sort apart" : "");
    Outputs<T> out(b, shape, 0xFF);
    team_tournament(in, team, sort_apart, out);
    one.expect_same(out, who);
    if (!same_bits(team_tree_backward(backward, team, 0xFF), one_sigma)) fail(who + ": tree backward");
  }
  if (emulated) check_emulated(in, one, backward, one_sigma, what);
}

void sweep(bool quick) {
  std::mt19937 rng(26);
  const std::vector<int64_t> ns = quick ? std::vector<int64_t>{1, 3, 17, 100} : std::vector<int64_t>{1, 2, 3, 5, 17, 64, 100, 257};
  int64_t shapes = 0;
  for (const int64_t n : ns)
    for (const int64_t k : {int64_t{1}, n / 3, n - 1, n}) {
      if (k < 1 || k > n) continue;
      for (int mask_kind = 0; mask_kind < 3; ++mask_kind) {
        const bool keep_order = (n + k + mask_kind) % 2 == 0;
        const bool emulated = mask_kind == (n + k) % 3;  // a third of the shapes through the kernel file too
        check_shape<float>(rng, {3, 32, 33}, 2, n, k, mask_kind, keep_order, emulated);
        check_shape<double>(rng, {3, 32, 33}, 2, n, k, mask_kind, !keep_order, emulated);
        shapes += 2;
      }
    }
  // Teams larger than some lists: every striding loop leaves ranks idle.
  for (const int64_t k : {int64_t{85}, int64_t{256}}) {
    check_shape<float>(rng, {128, 256}, 1, 257, k, 2, k == 85, true);
    ++shapes;
  }
  std::printf("team_programs: %lld shapes, teams of 3, 32, 33, 128 and 256 against the team of one: %s\n",
              static_cast<long long>(shapes), failures ? "MISMATCHES" : "all equal bit for bit");
}

// The fault run: one shape, a team of 32, the tournament then the tree backward; barrier J counts
// the tournament's sync() calls first, then the tree backward's. Returns the number of barriers.
int64_t fault_run(int64_t drop) {
  std::mt19937 rng(7);
  const auto in = make_inputs<float>(rng, 1, 40, 5, 0, true);  // 3 rounds, every one played
  const auto shape = kernels::tournament_shape(40, 5);
  Outputs<float> one(1, shape, 0x00), out(1, shape, 0xFF);
  team_tournament(in, 1, false, one);
  const int64_t first = team_tournament(in, 32, true, out, drop);
  one.expect_same(out, "tournament with barrier " + std::to_string(drop) + " removed");
  const Backward<float> backward(one, shape, 1, rng);
  int64_t second = 0;
  const auto sigma = team_tree_backward(backward, 32, 0xFF, drop >= first ? drop - first : -2, &second);
  if (!same_bits(sigma, team_tree_backward(backward, 1, 0x00)))
    fail("tree backward with barrier " + std::to_string(drop) + " removed");
  return first + second;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (argc == 1 || (argc == 2 && mode == "--quick")) {
    sweep(argc == 2);
  } else if (argc == 2 && mode == "--count-syncs") {
    std::printf("%lld\n", static_cast<long long>(fault_run(-1)));
  } else if (argc == 3 && mode == "--drop-sync") {
    char* end = nullptr;
    const long long j = std::strtoll(argv[2], &end, 10);
    if (*end != '\0' || j < 0) {
      std::fprintf(stderr, "team_programs: --drop-sync needs a barrier number >= 0, got '%s'\n", argv[2]);
      return 2;
    }
    const int64_t barriers = fault_run(j);
    // Where: addr2line -f -i -e team_programs ADDRESS (relative to the binary, which is a PIE).
    std::printf("team_programs: barrier %lld of %lld removed, returning to %p; %s\n", j,
                static_cast<long long>(barriers), dropped_at, failures ? "caught" : "NOT CAUGHT");
    if (j >= barriers) {
      std::fprintf(stderr, "team_programs: the fault run has %lld barriers, got %lld\n",
                   static_cast<long long>(barriers), j);
      return 2;
    }
  } else {
    std::fprintf(stderr, "usage: team_programs [--quick | --count-syncs | --drop-sync J]\n");
    return 2;
  }
  return failures ? 1 : 0;
}
