// Summarizer (see include/pyramidion/summarizer.h): tokenize, batch by length, encode, beam search,
// detokenize.
#include <pyramidion/summarizer.h>

#include <pyramidion/generate.h>

#include "json_fields.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <numeric>
#include <stdexcept>

namespace pyramidion {

SummarizeOptions SummarizeOptions::from_checkpoint(const std::string& dir) {
  SummarizeOptions o;
  const std::string path = (std::filesystem::path(dir) / "generation.json").string();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return o;
  const std::string owner = "generation.json ('" + path + "')";
  const auto root = detail::parse_strict(owner, detail::read_file(owner, path));
  detail::reject_unknown_keys(owner, root, "",
                              {"beam_size", "max_length", "min_length", "length_penalty", "no_repeat_ngram_size"});
  const detail::ObjectReader r(root, owner);
  int64_t i = 0;
  double d = 0;
  if (r.find("beam_size")) r.read("beam_size", i), o.beam_size(i);
  if (r.find("max_length")) r.read("max_length", i), o.max_length(i);
  if (r.find("min_length")) r.read("min_length", i), o.min_length(i);
  if (r.find("length_penalty")) r.read("length_penalty", d), o.length_penalty(d);
  if (r.find("no_repeat_ngram_size")) r.read("no_repeat_ngram_size", i), o.no_repeat_ngram_size(i);
  return o;
}

GenerateOptions SummarizeOptions::generate_options() const {
  return GenerateOptions()
      .beam_size(beam_size())
      .max_length(max_length())
      .min_length(min_length())
      .length_penalty(length_penalty())
      .no_repeat_ngram_size(no_repeat_ngram_size());
}

void SummarizeOptions::check(const ModelConfig& config) const {
  check_generate_options(generate_options(), config);
  if (max_tokens() < 1)
    throw std::invalid_argument("SummarizeOptions.max_tokens = " + std::to_string(max_tokens()) + " must be >= 1");
}

Summarizer::Summarizer(Seq2Seq model, Tokenizer tokenizer) : model_(std::move(model)), tokenizer_(std::move(tokenizer)) {
  const auto& c = model_->config();
  if (tokenizer_.vocab_size() != c.vocab_size || tokenizer_.pad_id() != c.pad_id || tokenizer_.bos_id() != c.bos_id ||
      tokenizer_.eos_id() != c.eos_id)
    throw std::invalid_argument("Summarizer: the tokenizer (vocabulary " + std::to_string(tokenizer_.vocab_size()) +
                                ", pad/bos/eos " + std::to_string(tokenizer_.pad_id()) + "/" +
                                std::to_string(tokenizer_.bos_id()) + "/" + std::to_string(tokenizer_.eos_id()) +
                                ") does not match the model (vocabulary " + std::to_string(c.vocab_size) +
                                ", pad/bos/eos " + std::to_string(c.pad_id) + "/" + std::to_string(c.bos_id) + "/" +
                                std::to_string(c.eos_id) + ")");
  model_->eval();
}

Summarizer Summarizer::load(const std::string& dir) {
  const auto tokenizer_path = std::filesystem::path(dir) / "tokenizer.model";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(tokenizer_path, ec))
    throw std::runtime_error("Summarizer::load: missing " + tokenizer_path.string() +
                             " (a pyramidion-train checkpoint holds config.json, weights.pt and tokenizer.model)");
  return Summarizer(Seq2Seq::load(dir), Tokenizer::load(tokenizer_path.string()));
}

std::vector<Summary> Summarizer::summarize(const std::vector<std::string>& documents, const SummarizeOptions& options) {
  const auto& config = model_->config();
  options.check(config);
  const int64_t decoder_rows =
      options.beam_size() * (options.max_length() > 0 ? options.max_length() : config.max_target_length);
  const auto generate_options = options.generate_options();
  std::vector<Summary> out(documents.size());
  std::vector<std::vector<int64_t>> ids(documents.size());
  for (size_t i = 0; i < documents.size(); ++i) {
    if (options.keep_positions()) {  // the spans come with the ids: one tokenization
      out[i].pieces = tokenizer_.encode_with_offsets(documents[i]);
      for (const auto& piece : out[i].pieces) ids[i].push_back(piece.id);
    } else {
      ids[i] = tokenizer_.encode(documents[i]);
    }
    if (ids[i].empty())
      throw std::invalid_argument("Summarizer: document " + std::to_string(i) + " has no tokens (empty text)");
    out[i].document_tokens = static_cast<int64_t>(ids[i].size());
    if (out[i].document_tokens > config.max_source_length) ids[i].resize(static_cast<size_t>(config.max_source_length));
    out[i].source_tokens = static_cast<int64_t>(ids[i].size());
  }
  // Longest first; a batch grows while (documents x longest) fits the budget.
  std::vector<size_t> order(documents.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ids[a].size() > ids[b].size(); });
  torch::NoGradGuard no_grad;
  for (size_t start = 0; start < order.size();) {
    const int64_t n = static_cast<int64_t>(ids[order[start]].size());
    const size_t count = std::max<size_t>(
        1, std::min<size_t>(order.size() - start, static_cast<size_t>(options.max_tokens() / (n + decoder_rows))));
    const auto t0 = std::chrono::steady_clock::now();
    auto src = at::full({static_cast<int64_t>(count), n}, config.pad_id, at::kLong);  // (b, n)
    auto mask = at::zeros({static_cast<int64_t>(count), n}, at::kBool);             // (b, n)
    for (size_t r = 0; r < count; ++r) {
      const auto& doc = ids[order[start + r]];
      const auto len = static_cast<int64_t>(doc.size());
      src[static_cast<int64_t>(r)].narrow(0, 0, len).copy_(at::tensor(doc, at::kLong));
      mask[static_cast<int64_t>(r)].narrow(0, 0, len).fill_(true);
    }
    const auto device = model_->parameters().front().device();  // where the caller put the model
    const auto encoded = model_->encode(src.to(device), mask.to(device));
    const auto generation = generate(model_, encoded, generate_options);
    const auto tokens = generation.tokens.cpu();    // (b, t)
    const auto lengths = generation.lengths.cpu();  // (b)
    const auto scores = generation.scores.cpu();    // (b)
    std::vector<at::Tensor> kept;
    for (const auto& k : encoded.kept_positions) kept.push_back(k.cpu());  // (b, k_i) each
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / static_cast<double>(count);
    const auto tok = tokens.accessor<int64_t, 2>();
    for (size_t r = 0; r < count; ++r) {
      Summary& s = out[order[start + r]];
      const auto row = static_cast<int64_t>(r);
      const int64_t len = lengths[row].item<int64_t>();
      for (int64_t j = 0; j < len && tok[row][j] != config.eos_id; ++j) s.tokens.push_back(tok[row][j]);
      s.summary = tokenizer_.decode(s.tokens);
      s.score = scores[row].item<double>();
      s.seconds = seconds;
      if (options.keep_positions()) {
        for (const auto& k : kept) {
          const auto acc = k.accessor<int64_t, 2>();
          std::vector<int64_t> positions;
          for (int64_t j = 0; j < k.size(1); ++j)
            if (acc[row][j] >= 0) positions.push_back(acc[row][j]);
          s.kept.push_back(std::move(positions));
        }
      }
    }
    start += count;
  }
  return out;
}

}  // namespace pyramidion
