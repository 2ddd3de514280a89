// Token-budget batching with length bucketing, and collation (see include/pyramidion/batching.h).
//
// Legend: b examples in a batch, n longest source, t target positions.
#include <pyramidion/batching.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <stdexcept>

namespace pyramidion {

Batch Batch::to(at::Device device) const {
  Batch b = *this;
  b.src_ids = src_ids.to(device);
  b.src_mask = src_mask.to(device);
  b.tgt_in = tgt_in.to(device);
  b.tgt_out = tgt_out.to(device);
  return b;
}

Batch collate(const TokenizedCorpus& corpus, const std::vector<int64_t>& indices, const ModelConfig& config) {
  if (indices.empty()) throw std::invalid_argument("collate: no examples");
  int64_t n = 0, t = 0;
  for (const int64_t i : indices) {
    if (i < 0 || i >= corpus.size())
      throw std::invalid_argument("collate: example index " + std::to_string(i) + " is outside [0, " +
                                  std::to_string(corpus.size()) + ")");
    // + eos: after every target, and after every source when config.source_eos.
    const int64_t ns = corpus.source_length(i) + (config.source_eos ? 1 : 0), nt = corpus.target_length(i) + 1;
    if (corpus.source_length(i) == 0 || ns > config.max_source_length || nt > config.max_target_length)
      throw std::invalid_argument("collate: example '" + corpus.id(i) + "' has " + std::to_string(ns) +
                                  " source tokens and " + std::to_string(nt) +
                                  " target positions" + (config.source_eos ? " (eos included)" : "") +
                                  "; allowed: 1 .. max_source_length = " +
                                  std::to_string(config.max_source_length) + " and <= max_target_length = " +
                                  std::to_string(config.max_target_length) + " (truncate first)");
    n = std::max(n, ns);
    t = std::max(t, nt);
  }
  const int64_t b = static_cast<int64_t>(indices.size());
  Batch batch;
  batch.examples = indices;
  batch.src_ids = at::full({b, n}, config.pad_id, at::kLong);   // (b, n)
  batch.src_mask = at::zeros({b, n}, at::kBool);                // (b, n)
  batch.tgt_in = at::full({b, t}, config.pad_id, at::kLong);    // (b, t)
  batch.tgt_out = at::full({b, t}, config.pad_id, at::kLong);   // (b, t)
  auto src = batch.src_ids.accessor<int64_t, 2>();
  auto mask = batch.src_mask.accessor<bool, 2>();
  auto in = batch.tgt_in.accessor<int64_t, 2>();
  auto out = batch.tgt_out.accessor<int64_t, 2>();
  for (int64_t r = 0; r < b; ++r) {
    const auto s = corpus.source(indices[r]);
    const auto y = corpus.target(indices[r]);
    for (size_t j = 0; j < s.size(); ++j) {
      src[r][j] = s[j];
      mask[r][j] = true;
    }
    if (config.source_eos) {
      src[r][s.size()] = config.eos_id;
      mask[r][s.size()] = true;
    }
    in[r][0] = config.bos_id;
    for (size_t j = 0; j < y.size(); ++j) {
      in[r][j + 1] = y[j];
      out[r][j] = y[j];
    }
    out[r][y.size()] = config.eos_id;
    batch.source_tokens += static_cast<int64_t>(s.size()) + (config.source_eos ? 1 : 0);
    batch.target_tokens += static_cast<int64_t>(y.size()) + 1;
  }
  return batch;
}

std::vector<std::vector<int64_t>> make_batches(const TokenizedCorpus& corpus, const BatchingOptions& options,
                                               int64_t epoch) {
  if (options.max_tokens() < 1)
    throw std::invalid_argument("make_batches: max_tokens = " + std::to_string(options.max_tokens()) + " must be >= 1");
  if (options.bucket_size() < 0)
    throw std::invalid_argument("make_batches: bucket_size = " + std::to_string(options.bucket_size()) +
                                " must be >= 0 (0 = one bucket)");
  if (options.target_positions() < 0)
    throw std::invalid_argument("make_batches: target_positions = " + std::to_string(options.target_positions()) +
                                " must be >= 0 (0 = each target's length + 1)");
  if (epoch < 0) throw std::invalid_argument("make_batches: epoch = " + std::to_string(epoch) + " must be >= 0");
  // One generator per epoch, from (seed, epoch) alone.
  std::seed_seq seq{static_cast<uint32_t>(options.seed()), static_cast<uint32_t>(options.seed() >> 32),
                    static_cast<uint32_t>(epoch), static_cast<uint32_t>(static_cast<uint64_t>(epoch) >> 32)};
  std::mt19937_64 rng(seq);
  std::vector<int64_t> order(static_cast<size_t>(corpus.size()));
  std::iota(order.begin(), order.end(), 0);
  if (options.shuffle()) std::shuffle(order.begin(), order.end(), rng);
  const auto positions = [&](int64_t i) {
    return options.target_positions() > 0 ? options.target_positions() : corpus.target_length(i) + 1;
  };
  const size_t bucket = options.bucket_size() > 0 ? static_cast<size_t>(options.bucket_size()) : order.size();

  std::vector<std::vector<int64_t>> batches;
  for (size_t start = 0; start < order.size(); start += bucket) {
    const auto end = std::min(order.size(), start + bucket);
    // Longest first within the bucket; ties by the order so far, so the result depends on the
    // shuffle (or the corpus order) only.
    std::stable_sort(order.begin() + start, order.begin() + end, [&](int64_t a, int64_t b) {
      const int64_t la = corpus.source_length(a), lb = corpus.source_length(b);
      return la != lb ? la > lb : corpus.target_length(a) > corpus.target_length(b);
    });
    std::vector<int64_t> batch;
    int64_t n = 0, t = 0;
    for (size_t j = start; j < end; ++j) {
      const int64_t i = order[j];
      const int64_t nn = std::max(n, corpus.source_length(i)), tt = std::max(t, positions(i));
      if (!batch.empty() && static_cast<int64_t>(batch.size() + 1) * (nn + tt) > options.max_tokens()) {
        batches.push_back(std::move(batch));
        batch.clear();
        n = corpus.source_length(i);
        t = positions(i);
      } else {
        n = nn;
        t = tt;
      }
      batch.push_back(i);
    }
    if (!batch.empty()) batches.push_back(std::move(batch));
  }
  if (options.shuffle()) std::shuffle(batches.begin(), batches.end(), rng);
  return batches;
}

}  // namespace pyramidion
