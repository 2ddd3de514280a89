// tests/import: pyramidion::import_hf against transformers itself. The fixtures (random PEGASUS and
// BigBird-PEGASUS models saved as users have them, and what transformers computes with them on
// real papers' text) are made by make_hf_fixtures.py in the peer environment (ctest fixture
// import.hf_fixtures) into the directory PYRAMIDION_HF_FIXTURES (compiled in; the environment
// variable of that name overrides it).
#include <pyramidion/config.h>
#include <pyramidion/generate.h>
#include <pyramidion/import.h>
#include <pyramidion/model.h>
#include <pyramidion/summarizer.h>
#include <pyramidion/tokenizer.h>

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <functional>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "support/test_support.h"
#include "util/output_file.h"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using pyramidion_test::error_of;

const char* const kModels[] = {"pegasus", "pegasus_odd", "pegasus_bin", "bigbird", "bigbird_bias_bf16"};

fs::path fixtures() {
  const char* env = std::getenv("PYRAMIDION_HF_FIXTURES");
  const fs::path dir = env ? env : PYRAMIDION_HF_FIXTURES;
  if (!fs::is_directory(dir / "pegasus"))
    throw std::runtime_error(dir.string() + " holds no fixtures of make_hf_fixtures.py (run the ctest fixture "
                             "import.hf_fixtures: ctest -R '^import\\.')");
  return dir;
}

json read_json(const fs::path& path) {
  std::ifstream in(path);
  return json::parse(in);
}

fs::path scratch(const std::string& name) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("pyramidion_import_" + name + "_" + std::to_string(::getpid()));
  pyramidion::detail::remove_tree(dir.string());
  fs::create_directories(dir);
  return dir;
}

at::Tensor long_tensor(const json& rows) {  // (b, n)
  std::vector<int64_t> flat;
  for (const auto& r : rows)
    for (const auto& v : r) flat.push_back(v.get<int64_t>());
  return at::tensor(flat, at::kLong).view({static_cast<int64_t>(rows.size()), -1});
}

at::Tensor float_tensor(const json& values, const json& shape) {
  std::vector<float> flat;
  for (const auto& v : values) flat.push_back(v.get<float>());
  return at::tensor(flat, at::kFloat).view(shape.get<std::vector<int64_t>>());
}

// The imported model of fixture `name` (imported once per test binary run).
pyramidion::Seq2Seq imported(const std::string& name) {
  static std::map<std::string, fs::path> done;
  if (!done.count(name)) {
    const auto out = scratch("model_" + name) / "model";
    pyramidion::import_hf((fixtures() / name).string(), out.string());
    done[name] = out;
  }
  auto model = pyramidion::Seq2Seq::load(done[name].string());
  model->eval();
  return model;
}

class ImportedModel : public ::testing::TestWithParam<const char*> {};

TEST_P(ImportedModel, EncoderOutputMatchesTransformers) {
  const auto expected = read_json(fixtures() / GetParam() / "expected.json");
  auto model = imported(GetParam());
  const auto src = long_tensor(expected["src"]);                        // (b, n), eos included
  const auto mask = long_tensor(expected["src_mask"]).to(at::kBool);    // (b, n)
  const auto want = float_tensor(expected["encoder"], expected["encoder_shape"]);  // (b, n, d)
  torch::NoGradGuard no_grad;
  const auto got = model->encode(src, mask).memory;  // (b, n, d), zero at padding
  ASSERT_EQ(got.sizes(), want.sizes());
  const auto real = mask.unsqueeze(-1).expand_as(want);  // transformers computes padding rows too
  const double err = (got - want).abs().masked_select(real).max().item<double>();
  EXPECT_LE(err, 1e-5) << GetParam() << ": largest difference at real positions";
}

TEST_P(ImportedModel, TeacherForcedLogitsMatchTransformers) {
  const auto expected = read_json(fixtures() / GetParam() / "expected.json");
  auto model = imported(GetParam());
  const auto src = long_tensor(expected["src"]);
  const auto mask = long_tensor(expected["src_mask"]).to(at::kBool);
  const auto dec_in = long_tensor(expected["dec_in"]);                              // (b, t)
  const auto want = float_tensor(expected["logits"], expected["logits_shape"]);     // (b, t, v)
  torch::NoGradGuard no_grad;
  const auto got = model->forward(src, mask, dec_in);                               // (b, t, v)
  ASSERT_EQ(got.sizes(), want.sizes());
  const auto lengths = expected["target_lengths"].get<std::vector<int64_t>>();
  for (int64_t r = 0; r < got.size(0); ++r) {
    const auto t = lengths[static_cast<size_t>(r)];  // positions past a target's end see padding inputs
    const double err = (got[r].narrow(0, 0, t) - want[r].narrow(0, 0, t)).abs().max().item<double>();
    EXPECT_LE(err, 1e-5) << GetParam() << " row " << r;
  }
}

TEST_P(ImportedModel, GenerationMatchesTransformersTokenForToken) {
  const auto expected = read_json(fixtures() / GetParam() / "expected.json");
  auto model = imported(GetParam());
  const auto src = long_tensor(expected["src"]);
  const auto mask = long_tensor(expected["src_mask"]).to(at::kBool);
  for (const auto& [name, g] : expected["generations"].items()) {
    const auto& o = g["options"];
    // transformers counts max_length and min_length with the decoder's start token.
    auto options = pyramidion::GenerateOptions()
                       .beam_size(o["num_beams"].get<int64_t>())
                       .max_length(o["max_length"].get<int64_t>() - 1)
                       .min_length(std::max<int64_t>(0, o["min_length"].get<int64_t>() - 1))
                       .length_penalty(o.value("length_penalty", 1.0))
                       .no_repeat_ngram_size(o.value("no_repeat_ngram_size", 0));
    torch::NoGradGuard no_grad;
    const auto out = pyramidion::generate(model, src, mask, options);
    for (size_t r = 0; r < g["tokens"].size(); ++r) {
      const auto len = out.lengths[static_cast<int64_t>(r)].item<int64_t>();
      const auto row = out.tokens[static_cast<int64_t>(r)].narrow(0, 0, len);
      const std::vector<int64_t> got(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + len);
      EXPECT_EQ(got, g["tokens"][r].get<std::vector<int64_t>>()) << GetParam() << " " << name << " row " << r;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ImportedModel, ::testing::ValuesIn(kModels));

TEST(ImportTokenizer, IdsAndTextAreTransformersPegasusTokenizers) {
  const auto expected = read_json(fixtures() / "tokenizer_expected.json");
  const auto out = scratch("tokenizer") / "model";
  pyramidion::import_hf((fixtures() / "pegasus").string(), out.string());
  const auto tokenizer = pyramidion::Tokenizer::load((out / "tokenizer.model").string());
  EXPECT_EQ(tokenizer.vocab_size(), expected["vocab_size"].get<int64_t>());
  EXPECT_EQ(tokenizer.pad_id(), 0);
  EXPECT_EQ(tokenizer.eos_id(), 1);
  EXPECT_EQ(tokenizer.unk_id(), 105);
  EXPECT_EQ(tokenizer.bos_id(), -1);
  const auto& texts = expected["texts"];
  ASSERT_GE(texts.size(), 20u);
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto text = texts[i].get<std::string>();
    auto ids = tokenizer.encode(text);
    ids.push_back(1);  // PegasusTokenizer appends eos
    EXPECT_EQ(ids, expected["ids"][i].get<std::vector<int64_t>>()) << "text " << i;
    auto cut = tokenizer.encode(text, 49);  // truncation to 50 keeps 49 tokens and eos
    cut.push_back(1);
    EXPECT_EQ(cut, expected["truncated_50"][i].get<std::vector<int64_t>>()) << "text " << i;
    EXPECT_EQ(tokenizer.decode(expected["ids"][i].get<std::vector<int64_t>>()), expected["decoded"][i].get<std::string>())
        << "text " << i;
  }
}

TEST(ImportTokenizer, SummarizerReadsTheDocumentAsTransformersTruncatesIt) {
  // The imported model's source is the document's first max_source_length - 1 tokens, then eos:
  // summarizing the text gives what generating from transformers' truncated ids gives.
  const auto expected = read_json(fixtures() / "tokenizer_expected.json");
  const auto out = scratch("summarizer") / "model";
  pyramidion::import_hf((fixtures() / "pegasus_odd").string(), out.string(),
                        pyramidion::ImportOptions().max_source_length(50));
  auto summarizer = pyramidion::Summarizer::load(out.string());
  auto model = pyramidion::Seq2Seq::load(out.string());
  model->eval();
  const auto search = pyramidion::GenerateOptions().beam_size(2).max_length(9);
  for (const size_t i : {size_t{0}, size_t{3}}) {
    const auto text = expected["texts"][i].get<std::string>();
    const auto summaries = summarizer.summarize({text}, pyramidion::SummarizeOptions().search(search));
    EXPECT_EQ(summaries[0].source_tokens, 49);
    const auto ids = expected["truncated_50"][i].get<std::vector<int64_t>>();
    torch::NoGradGuard no_grad;
    const auto g = pyramidion::generate(model, at::tensor(ids, at::kLong).view({1, -1}), {}, search);
    std::vector<int64_t> want;
    for (int64_t j = 0; j < g.lengths[0].item<int64_t>(); ++j) {
      const int64_t id = g.tokens[0][j].item<int64_t>();
      if (id != 1) want.push_back(id);  // the summary stops before eos
    }
    EXPECT_EQ(summaries[0].tokens, want) << "text " << i;
  }
}

// ---- pooling inserted ------------------------------------------------------------------------

TEST(ImportPooling, PooledLengthsMakeADeepPyramidionAroundTheSameWeights) {
  const auto dir = scratch("pooling");
  const auto plain = dir / "plain", pooled = dir / "pooled", again = dir / "again", other = dir / "other";
  const auto options = pyramidion::ImportOptions().max_source_length(256).block_size(16);
  pyramidion::import_hf((fixtures() / "pegasus_odd").string(), plain.string(), options);
  auto pooling = options;
  pooling.pooled_lengths({32, 0, 8}).seed(7);
  const auto report = pyramidion::import_hf((fixtures() / "pegasus_odd").string(), pooled.string(), pooling);
  pyramidion::import_hf((fixtures() / "pegasus_odd").string(), again.string(), pooling);
  pyramidion::import_hf((fixtures() / "pegasus_odd").string(), other.string(), pooling.seed(8));
  EXPECT_EQ(report.config.pooled_lengths, (std::vector<int64_t>{32, 0, 8}));
  EXPECT_EQ(report.config.block_size, 16);
  EXPECT_EQ(report.config.max_source_length, 256);
  auto a = pyramidion::Seq2Seq::load(plain.string()), b = pyramidion::Seq2Seq::load(pooled.string());
  auto c = pyramidion::Seq2Seq::load(again.string()), d = pyramidion::Seq2Seq::load(other.string());
  // Every imported tensor is the same; only the scorers are new.
  const auto plain_weights = a->named_parameters();
  int64_t scorers = 0;
  const double bound = 1.0 / std::sqrt(static_cast<double>(report.config.d_model));
  for (const auto& p : b->named_parameters()) {
    if (p.key().rfind("encoder_poolers.", 0) == 0) {
      ++scorers;
      // LibTorch's Linear initialisation: uniform in [-1/sqrt(d), 1/sqrt(d)], drawn from the seed.
      EXPECT_LE(p.value().abs().max().item<double>(), bound) << p.key();
      EXPECT_TRUE(at::equal(p.value(), c->named_parameters()[p.key()])) << p.key() << " depends on the seed only";
      EXPECT_FALSE(at::equal(p.value(), d->named_parameters()[p.key()])) << p.key() << " ignores the seed";
      continue;
    }
    ASSERT_NE(plain_weights.find(p.key()), nullptr) << p.key();
    EXPECT_TRUE(at::equal(p.value(), plain_weights[p.key()])) << p.key();
  }
  EXPECT_EQ(scorers, 2 * 2);  // two pooling layers: a weight and a bias each
  // A source no longer than every pooled length passes the poolings unchanged: the same logits.
  a->eval();
  b->eval();
  const auto expected = read_json(fixtures() / "pegasus_odd" / "expected.json");
  const auto src = long_tensor(expected["src"]).narrow(0, 1, 1);  // the 23-token source: 23 <= 32
  const auto short_src = src.narrow(1, 0, 8);                    // 8 <= 8
  const auto tgt = long_tensor(expected["dec_in"]).narrow(0, 1, 1);
  torch::NoGradGuard no_grad;
  const auto ones = at::ones_like(short_src, at::kBool);
  EXPECT_LT((a->forward(short_src, ones, tgt) - b->forward(short_src, ones, tgt)).abs().max().item<double>(), 1e-5);
  // A longer one is pooled: 23 tokens to 8 rows of memory.
  EXPECT_EQ(b->encode(src, at::ones_like(src, at::kBool)).memory.size(1), 8);
}

// ---- refusals ----------------------------------------------------------------------------------

// A copy of fixture `name` in a scratch directory, to damage.
fs::path copy_fixture(const std::string& name, const std::string& tag) {
  const auto dir = scratch("refusal_" + tag) / name;
  fs::copy(fixtures() / name, dir, fs::copy_options::recursive);
  return dir;
}

std::string import_error(const fs::path& dir) {
  return error_of<std::invalid_argument>([&] { pyramidion::import_hf(dir.string(), (dir.parent_path() / "out").string()); });
}

void edit_config(const fs::path& dir, const std::function<void(json&)>& edit) {
  auto config = read_json(dir / "config.json");
  edit(config);
  std::ofstream(dir / "config.json") << config.dump(2);
}

TEST(ImportRefusals, AnotherArchitectureIsRefusedNamingTheSupportedOnes) {
  const auto dir = copy_fixture("pegasus", "architecture");
  edit_config(dir, [](json& c) { c["architectures"] = {"T5ForConditionalGeneration"}; c["model_type"] = "t5"; });
  const auto message = import_error(dir);
  EXPECT_CONTAINS(message, "\"T5ForConditionalGeneration\" is not supported");
  EXPECT_CONTAINS(message, "\"PegasusForConditionalGeneration\", \"BigBirdPegasusForConditionalGeneration\"");
  EXPECT_FALSE(fs::exists(dir.parent_path() / "out"));
}

TEST(ImportRefusals, MissingFilesAreNamed) {
  auto dir = copy_fixture("pegasus", "no_config");
  fs::remove(dir / "config.json");
  EXPECT_CONTAINS(import_error(dir), "has no config.json");
  dir = copy_fixture("pegasus", "no_weights");
  fs::remove(dir / "model.safetensors");
  EXPECT_CONTAINS(import_error(dir), "holds no weights: none of model.safetensors");
  dir = copy_fixture("pegasus", "no_spiece");
  fs::remove(dir / "spiece.model");
  EXPECT_CONTAINS(import_error(dir), "has no spiece.model");
  std::ofstream(dir / "tokenizer.json") << "{}";
  EXPECT_CONTAINS(import_error(dir), "only tokenizer.json");
  dir = copy_fixture("pegasus_odd", "no_shard");
  fs::remove(dir / "model-00003-of-00006.safetensors");
  EXPECT_CONTAINS(import_error(dir), "names the shard 'model-00003-of-00006.safetensors'");
  EXPECT_FALSE(fs::exists(dir.parent_path() / "out"));
}

TEST(ImportRefusals, ShapesThatDisagreeWithConfigJsonAreNamed) {
  const auto dir = copy_fixture("pegasus", "shapes");
  edit_config(dir, [](json& c) { c["encoder_ffn_dim"] = 30; c["decoder_ffn_dim"] = 30; });
  const auto message = import_error(dir);
  EXPECT_CONTAINS(message, "tensor 'model.encoder.layers.0.fc1.weight' has shape [24, 16] but config.json makes it [30, 16]");
  const auto heads = copy_fixture("pegasus", "heads");
  edit_config(heads, [](json& c) { c["decoder_attention_heads"] = 2; });
  EXPECT_CONTAINS(import_error(heads), "\"encoder_attention_heads\" = 4 and \"decoder_attention_heads\" = 2 differ");
}

TEST(ImportRefusals, TruncatedOrDamagedWeightsAreNamed) {
  auto dir = copy_fixture("pegasus", "truncated");
  fs::resize_file(dir / "model.safetensors", fs::file_size(dir / "model.safetensors") - 100);
  auto message = import_error(dir);
  EXPECT_CONTAINS(message, "model.safetensors");
  EXPECT_CONTAINS(message, "damaged or truncated");
  dir = copy_fixture("pegasus", "header");
  {
    std::fstream f(dir / "model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(0);
    f.write("\xff\xff\xff\xff\x00\x00\x00\x00", 8);  // a header longer than the file
  }
  EXPECT_CONTAINS(import_error(dir), "its header claims 4294967295 bytes");
  dir = copy_fixture("pegasus_bin", "bin");
  fs::resize_file(dir / "pytorch_model.bin", fs::file_size(dir / "pytorch_model.bin") / 2);
  EXPECT_CONTAINS(import_error(dir), "pytorch_model.bin");
  dir = copy_fixture("pegasus", "extra");
  edit_config(dir, [](json& c) { c["decoder_layers"] = 1; });  // the checkpoint holds a second layer
  EXPECT_CONTAINS(import_error(dir), "'model.decoder.layers.1.");
}

TEST(ImportRefusals, OptionsThatMakeNoValidModelAreNamed) {
  const auto message = error_of<std::invalid_argument>([&] {
    pyramidion::import_hf((fixtures() / "pegasus").string(), (scratch("options") / "out").string(),
                          pyramidion::ImportOptions().pooled_lengths({8}));
  });
  EXPECT_CONTAINS(message, "ModelConfig.pooled_lengths = [8] must have one entry per encoder layer");
}

TEST(ImportGeneration, GenerationConfigBecomesGenerationJson) {
  const auto dir = copy_fixture("pegasus", "generation");
  std::ofstream(dir / "generation_config.json")
      << R"({"num_beams": 8, "max_length": 33, "min_length": 5, "length_penalty": 0.8, "no_repeat_ngram_size": 3,
            "decoder_start_token_id": 0, "eos_token_id": 1, "pad_token_id": 0, "early_stopping": true})";
  const auto out = dir.parent_path() / "out";
  pyramidion::import_hf(dir.string(), out.string());
  const auto o = pyramidion::SummarizeOptions::from_checkpoint(out.string());
  EXPECT_EQ(o.search().beam_size(), 8);
  EXPECT_EQ(o.search().max_length(), 32);  // transformers counts the decoder's start token
  EXPECT_EQ(o.search().min_length(), 4);
  EXPECT_EQ(o.search().length_penalty(), 0.8);
  EXPECT_EQ(o.search().no_repeat_ngram_size(), 3);
}

// ---- the command line ---------------------------------------------------------------------------

TEST(ImportTool, ImportsAndGivesTwoForAnUnsupportedCheckpoint) {
  const std::string tool = PYRAMIDION_IMPORT_BIN;
  if (tool.empty()) GTEST_SKIP() << "pyramidion was built without its tools (PYRAMIDION_BUILD_TOOLS=OFF)";
  const auto dir = scratch("tool");
  const auto log = dir / "log";
  const auto out = dir / "out";
  EXPECT_EQ(pyramidion_test::run_process(tool, {"hf", (fixtures() / "bigbird").string(), "--out", out.string(),
                                                "--max-source-length", "100", "--pooled-lengths", "50,20"},
                                         {}, log),
            0)
      << pyramidion_test::read_text(log);
  const auto text = pyramidion_test::read_text(log);
  EXPECT_CONTAINS(text, "BigBirdPegasusForConditionalGeneration from model.safetensors");
  EXPECT_CONTAINS(text, "the encoder's learned positions (64) were extended to 100 by repeating the table");
  EXPECT_EQ(pyramidion::ModelConfig::from_json_file((out / "config.json").string()).pooled_lengths,
            (std::vector<int64_t>{50, 20}));
  const auto t5 = copy_fixture("pegasus", "tool_t5");
  edit_config(t5, [](json& c) { c["architectures"] = {"T5ForConditionalGeneration"}; });
  EXPECT_EQ(pyramidion_test::run_process(tool, {"hf", t5.string(), "--out", (dir / "t5").string()}, {}, log), 2);
  EXPECT_CONTAINS(pyramidion_test::read_text(log), "is not supported");
  EXPECT_FALSE(fs::exists(dir / "t5"));
}

}  // namespace
