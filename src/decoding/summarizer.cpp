// Summarizer (see include/pyramidion/summarizer.h): tokenize, batch by length (make_batches),
// encode, beam search, detokenize.
//
// Legend: b documents in a batch, n longest source, t generated positions, k_i rows kept by
// pooling layer i.
#include <pyramidion/summarizer.h>

#include <pyramidion/batching.h>
#include <pyramidion/generate.h>

#include <ATen/ATen.h>

#include <chrono>
#include <filesystem>
#include <stdexcept>

#include "util/output_file.h"
#include "util/directory_checksums.h"
#include "util/field_table.h"
#include "util/json_fields.h"

namespace pyramidion {
namespace {

using Table = detail::FieldTable<SummarizeOptions>;

// A generation.json key bound to one setting of SummarizeOptions::search.
template <typename T, typename Access>
Table::Field setting(const char* name, Access access) {
  Table::Field f{name, "", 0, false, nullptr, nullptr};
  f.read = [name, access](const detail::ObjectReader& r, SummarizeOptions& o) { r.read(name, access(o)); };
  f.write = [access](const SummarizeOptions& o) {
    SummarizeOptions copy = o;
    return nlohmann::ordered_json(static_cast<T>(access(copy)));
  };
  return f;
}

// The keys of generation.json.
const Table& generation_table() {
  static const Table table =
      Table("generation.json")
          .add(setting<int64_t>("beam_size", [](SummarizeOptions& o) -> int64_t& { return o.search().beam_size(); }))
          .add(setting<int64_t>("max_length", [](SummarizeOptions& o) -> int64_t& { return o.search().max_length(); }))
          .add(setting<int64_t>("min_length", [](SummarizeOptions& o) -> int64_t& { return o.search().min_length(); }))
          .add(setting<double>("length_penalty", [](SummarizeOptions& o) -> double& { return o.search().length_penalty(); }))
          .add(setting<int64_t>("no_repeat_ngram_size",
                                [](SummarizeOptions& o) -> int64_t& { return o.search().no_repeat_ngram_size(); }));
  return table;
}

}  // namespace

SummarizeOptions SummarizeOptions::from_checkpoint(const std::string& dir) {
  SummarizeOptions o;
  const std::string path = (std::filesystem::path(dir) / "generation.json").string();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return o;
  const std::string owner = "generation.json ('" + path + "')";
  const auto root = detail::parse_strict(owner, detail::read_file(owner, path));
  generation_table().read(root, o, "", {}, owner);
  const auto config_path = std::filesystem::path(dir) / "config.json";
  if (std::filesystem::is_regular_file(config_path, ec)) {  // the settings are valid for this model
    // config.json's own errors (a newer format version, damage) name that file: read it first.
    const auto config = ModelConfig::from_json_file(config_path.string());
    try {
      check_generate_options(o.search(), config);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(owner + ": " + e.what() + " (edit the file, or override the setting)");
    }
  }
  return o;
}

// Keys sorted, as in the checkpoints that earlier versions wrote.
std::string SummarizeOptions::to_generation_json() const {
  return detail::json(generation_table().write(*this)).dump(2) + "\n";
}

void SummarizeOptions::check(const ModelConfig& config) const {
  check_generate_options(search(), config);
  constexpr int64_t kMaxTokens = int64_t{1} << 32;  // tokens in one batch: terabytes of activations
  if (max_tokens() < 1 || max_tokens() > kMaxTokens)
    throw std::invalid_argument("SummarizeOptions.max_tokens = " + std::to_string(max_tokens()) + " must be in [1, " +
                                std::to_string(kMaxTokens) + "]");
}

Summarizer::Summarizer(Seq2Seq model, Tokenizer tokenizer) : model_(std::move(model)), tokenizer_(std::move(tokenizer)) {
  tokenizer_.check_fits(model_->config(), "Summarizer");
  model_->eval();
}

Summarizer Summarizer::load(const std::string& dir) {
  const auto tokenizer_path = std::filesystem::path(dir) / "tokenizer.model";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(tokenizer_path, ec))
    throw std::invalid_argument("Summarizer::load: missing " + tokenizer_path.string() +
                             " (a pyramidion-train checkpoint holds config.json, weights.pt and tokenizer.model)");
  auto model = Seq2Seq::load(dir);
  detail::verify_file_checksum("Summarizer::load", dir, "tokenizer.model");
  return Summarizer(std::move(model), Tokenizer::load(tokenizer_path.string()));
}

Summarizer& Summarizer::to(at::Device device, Precision precision, Quantization quantization) {
  check_precision(precision, device);
  check_quantization(quantization, precision, device);
  model_->unpack();
  model_->to(device, dtype_of(precision));
  if (quantization == Quantization::int8) model_->quantize_int8();
  else if (device.is_cpu() && precision == Precision::fp32) model_->prepack_fp32();
  return *this;
}

std::vector<Summary> Summarizer::summarize(const std::vector<std::string>& documents, const SummarizeOptions& options) {
  const auto& config = model_->config();
  options.check(config);
  std::vector<std::vector<Tokenizer::Piece>> pieces(documents.size());
  std::vector<int64_t> document_tokens(documents.size());
  TokenizedCorpus sources;
  // The model reads max_source_length tokens: only those are tokenized, and one more, which says
  // whether the document is longer and, with keep_positions, where its unread text begins.
  const int64_t keep = config.max_source_length - (config.source_eos ? 1 : 0);  // collate appends eos
  for (size_t i = 0; i < documents.size(); ++i) {
    std::vector<int64_t> ids;
    if (options.keep_positions()) {  // the spans come with the ids: one tokenization
      pieces[i] = tokenizer_.encode_with_offsets(documents[i], keep + 1);
      for (const auto& piece : pieces[i]) ids.push_back(piece.id);
    } else {
      ids = tokenizer_.encode(documents[i], keep + 1);
    }
    if (ids.empty())
      throw std::invalid_argument("Summarizer: document " + std::to_string(i) + " has no tokens (empty text)");
    document_tokens[i] = static_cast<int64_t>(ids.size());
    if (document_tokens[i] > keep) {
      // The rest is counted window by window, without holding its tokens.
      document_tokens[i] = tokenizer_.count_tokens(documents[i]);
      ids.resize(static_cast<size_t>(keep));
    }
    sources.add(std::to_string(i), ids, {});
  }
  auto out = summarize(sources, options);
  for (size_t i = 0; i < documents.size(); ++i) {
    out[i].document_tokens = document_tokens[i];
    out[i].pieces = std::move(pieces[i]);
  }
  return out;
}

std::vector<Summary> Summarizer::summarize(const TokenizedCorpus& sources, const SummarizeOptions& options) {
  auto out = summarize_ids(model_, sources, options);
  for (auto& s : out) s.summary = tokenizer_.decode(s.tokens);
  return out;
}

std::vector<Summary> summarize_ids(Seq2Seq& model, const TokenizedCorpus& sources, const SummarizeOptions& options) {
  const auto& config = model->config();
  options.check(config);
  const auto& search = options.search();
  const int64_t max_length = search.max_length() > 0 ? search.max_length() : config.max_target_length;
  // Every batch bounds the encoder's rows and the decoder's cached positions together.
  const auto batches = make_batches(sources, BatchingOptions()
                                                 .max_tokens(options.max_tokens())
                                                 .bucket_size(0)
                                                 .shuffle(false)
                                                 .target_positions(search.beam_size() * max_length),
                                    0);
  const auto device = model->parameters().front().device();  // where the caller put the model
  std::vector<Summary> out(static_cast<size_t>(sources.size()));
  torch::NoGradGuard no_grad;
  int64_t done = 0;
  for (const auto& indices : batches) {
    if (options.stop() && options.stop()->load())
      throw std::runtime_error("summarize: stopped by request after " + std::to_string(done) + " of " +
                               std::to_string(sources.size()) + " documents");
    done += static_cast<int64_t>(indices.size());
    const auto t0 = std::chrono::steady_clock::now();
    const Batch batch = collate(sources, indices, config);
    const auto encoded = model->encode(batch.src_ids.to(device), batch.src_mask.to(device));
    const auto generation = generate(model, encoded, search);
    const auto tokens = generation.tokens.cpu();    // (b, t)
    const auto lengths = generation.lengths.cpu();  // (b)
    const auto scores = generation.scores.cpu();    // (b)
    std::vector<at::Tensor> kept;
    for (const auto& k : encoded.kept_positions) kept.push_back(k.cpu());  // (b, k_i) each
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() /
                           static_cast<double>(indices.size());
    const auto tok = tokens.accessor<int64_t, 2>();
    for (size_t r = 0; r < indices.size(); ++r) {
      Summary& s = out[static_cast<size_t>(indices[r])];
      const auto row = static_cast<int64_t>(r);
      const int64_t len = lengths[row].item<int64_t>();
      for (int64_t j = 0; j < len && tok[row][j] != config.eos_id; ++j) s.tokens.push_back(tok[row][j]);
      s.score = scores[row].item<double>();
      s.seconds = seconds;
      s.source_tokens = s.document_tokens = sources.source_length(indices[r]);
      if (!options.keep_positions()) continue;
      for (const auto& k : kept) {
        const auto acc = k.accessor<int64_t, 2>();
        std::vector<int64_t> positions;
        // A kept source eos (config.source_eos), at position source_tokens, stands for no text.
        for (int64_t j = 0; j < k.size(1); ++j)
          if (acc[row][j] >= 0 && acc[row][j] < s.source_tokens) positions.push_back(acc[row][j]);
        s.kept.push_back(std::move(positions));
      }
    }
  }
  return out;
}

HighlightDocument highlight_document(const std::string& id, const std::string& text, const std::string& reference,
                                     const Summary& summary, const ModelConfig& config) {
  HighlightDocument page;
  page.id = id;
  page.text = text;
  for (const auto& piece : summary.pieces) page.tokens.push_back({piece.begin, piece.end});
  // The pieces stop at the first token not read, whose begin starts the unread text; the tokens
  // after it, which the page only counts, get empty spans at the end.
  const auto tokens = static_cast<size_t>(summary.document_tokens);
  if (page.tokens.size() < tokens) page.tokens.resize(tokens, HighlightToken{text.size(), text.size()});
  page.tokens_read = summary.source_tokens;
  page.kept = summary.kept;
  for (const int64_t k : config.pooled_lengths)
    if (k > 0) page.layer_lengths.push_back(k);
  page.summary = summary.summary;
  page.reference = reference;
  return page;
}

}  // namespace pyramidion
