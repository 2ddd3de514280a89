// Tests of ModelConfig (src/models/config.cpp): the presets in configs/, JSON round trips, every
// validation error, JSON type and key errors, and atomic file writing.
#include <pyramidion/config.h>

#include "support/test_support.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>
#include "util/output_file.h"

#ifndef PYRAMIDION_SOURCE_DIR
#error "tests/CMakeLists.txt must define PYRAMIDION_SOURCE_DIR (the presets live in its configs/)"
#endif

namespace {

namespace fs = std::filesystem;
using pyramidion::Activation;
using pyramidion::ModelConfig;
using pyramidion::Norm;
using pyramidion::Positions;

const fs::path kConfigDir = fs::path(PYRAMIDION_SOURCE_DIR) / "configs";

using pyramidion_test::message_of;

// Field by field, so that a failure names the field (operator== is tested separately).
void expect_same_fields(const ModelConfig& a, const ModelConfig& b) {
  EXPECT_EQ(a.format_version, b.format_version);
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.d_model, b.d_model);
  EXPECT_EQ(a.heads, b.heads);
  EXPECT_EQ(a.ffn_size, b.ffn_size);
  EXPECT_EQ(a.encoder_layers, b.encoder_layers);
  EXPECT_EQ(a.decoder_layers, b.decoder_layers);
  EXPECT_EQ(a.dropout, b.dropout);
  EXPECT_EQ(a.attention_dropout, b.attention_dropout);
  EXPECT_EQ(pyramidion::to_string(a.activation), pyramidion::to_string(b.activation));
  EXPECT_EQ(pyramidion::to_string(a.norm), pyramidion::to_string(b.norm));
  EXPECT_EQ(a.attention_bias, b.attention_bias);
  EXPECT_EQ(a.max_source_length, b.max_source_length);
  EXPECT_EQ(a.max_target_length, b.max_target_length);
  EXPECT_EQ(pyramidion::to_string(a.positions), pyramidion::to_string(b.positions));
  EXPECT_EQ(a.block_size, b.block_size);
  EXPECT_EQ(a.pooled_lengths, b.pooled_lengths);
  EXPECT_EQ(a.pooler.base, b.pooler.base);
  EXPECT_EQ(a.pooler.keep_order, b.pooler.keep_order);
  EXPECT_EQ(a.pooler.hard_at_inference, b.pooler.hard_at_inference);
  EXPECT_EQ(a.pooler.score_epsilon, b.pooler.score_epsilon);
  EXPECT_EQ(a.shared_embeddings, b.shared_embeddings);
  EXPECT_EQ(a.scale_embeddings, b.scale_embeddings);
  EXPECT_EQ(a.logits_bias, b.logits_bias);
  EXPECT_EQ(a.pad_id, b.pad_id);
  EXPECT_EQ(a.bos_id, b.bos_id);
  EXPECT_EQ(a.eos_id, b.eos_id);
  EXPECT_EQ(a.source_eos, b.source_eos);
  EXPECT_TRUE(a == b);
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// A fresh directory, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() /
            ("pyramidion-" + std::string(test->name()) + "-" + std::to_string(::getpid()));
    pyramidion::detail::remove_tree(fs::path(path_).string());
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
    pyramidion::detail::remove_tree(fs::path(path_).string());
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// ---- presets --------------------------------------------------------------------------------

const std::vector<std::string> kPresets = {"blockwise",      "deep-pyramidion",      "pooler",
                                           "small-blockwise", "small-deep-pyramidion", "tiny-blockwise",
                                           "tiny-deep-pyramidion", "tiny-pooler", "tiny-vanilla", "vanilla"};

TEST(ModelConfigPresets, TheDirectoryHoldsExactlyTheTestedPresets) {
  std::vector<std::string> found;
  for (const auto& name : entries(kConfigDir))
    if (fs::path(name).extension() == ".json") found.push_back(fs::path(name).stem().string());
  EXPECT_EQ(found, kPresets) << "a preset added to configs/ must be added here and to configs/README.md";
}

TEST(ModelConfigPresets, EveryPresetLoadsValidatesAndIsWrittenInCanonicalForm) {
  for (const auto& name : kPresets) {
    SCOPED_TRACE(name);
    const auto path = kConfigDir / (name + ".json");
    const auto config = ModelConfig::from_json_file(path.string());
    EXPECT_NO_THROW(config.validate());
    // Every field spelled out, in the order and format to_json_string() writes: a preset never
    // depends on a default that may change.
    EXPECT_EQ(read_text(path), config.to_json_string() + "\n");
    expect_same_fields(ModelConfig::from_json_string(config.to_json_string()), config);
  }
}

TEST(ModelConfigPresets, ThePaperVariants) {
  auto load = [](const std::string& name) {
    return ModelConfig::from_json_file((kConfigDir / (name + ".json")).string());
  };
  const auto vanilla = load("vanilla");
  const auto blockwise = load("blockwise");
  const auto pooler = load("pooler");
  const auto deep = load("deep-pyramidion");
  // The defaults of the authors' code (their fairseq fork for arXiv 2009.05169).
  for (const auto* c : {&vanilla, &blockwise, &pooler, &deep}) {
    EXPECT_EQ(c->d_model, 512);
    EXPECT_EQ(c->heads, 8);
    EXPECT_EQ(c->ffn_size, 2048);
    EXPECT_EQ(c->encoder_layers, 6);
    EXPECT_EQ(c->decoder_layers, 6);
    EXPECT_EQ(c->dropout, 0.1);
    EXPECT_EQ(c->activation, Activation::relu);
    EXPECT_EQ(c->norm, Norm::post);
    EXPECT_TRUE(c->shared_embeddings);
    EXPECT_EQ(c->max_source_length, 8192);
    EXPECT_EQ(c->pooler.base, 20.0);
    EXPECT_TRUE(c->pooler.keep_order);
  }
  EXPECT_EQ(vanilla.block_size, 0);
  EXPECT_TRUE(vanilla.pooled_lengths.empty());
  EXPECT_EQ(blockwise.block_size, 512);
  EXPECT_TRUE(blockwise.pooled_lengths.empty());
  EXPECT_EQ(pooler.block_size, 512);
  EXPECT_EQ(pooler.pooled_lengths, (std::vector<int64_t>{0, 0, 0, 0, 0, 512}));
  EXPECT_EQ(deep.block_size, 512);
  EXPECT_EQ(deep.pooled_lengths, (std::vector<int64_t>{4096, 2048, 1024, 512, 0, 0}));
  // The tiny versions: the same architecture at test size.
  for (const auto& name : {"tiny-vanilla", "tiny-blockwise", "tiny-pooler", "tiny-deep-pyramidion"}) {
    SCOPED_TRACE(name);
    const auto c = load(name);
    EXPECT_EQ(c.d_model, 32);
    EXPECT_EQ(c.heads, 2);
    EXPECT_EQ(c.encoder_layers, 2);
    EXPECT_EQ(c.decoder_layers, 2);
    EXPECT_EQ(c.vocab_size, 64);
    EXPECT_EQ(c.max_source_length, 64);
  }
  EXPECT_EQ(load("tiny-vanilla").block_size, 0);
  EXPECT_EQ(load("tiny-blockwise").block_size, 16);
  EXPECT_TRUE(load("tiny-blockwise").pooled_lengths.empty());
  EXPECT_EQ(load("tiny-pooler").pooled_lengths, (std::vector<int64_t>{0, 16}));
  EXPECT_EQ(load("tiny-deep-pyramidion").pooled_lengths, (std::vector<int64_t>{32, 16}));
}

// configs/selection/ (docs/selection.md): the task's variants differ only in their pooling schedule,
// so that the side-by-side comparison compares pooling and nothing else.
TEST(ModelConfigPresets, TheSelectionVariantsDifferOnlyInPooling) {
  const fs::path dir = kConfigDir / "selection";
  const std::vector<std::string> expected = {"blockwise-4096.json", "blockwise.json", "deep-pyramidion-16.json",
                                             "deep-pyramidion-8-4096.json", "deep-pyramidion-8.json"};
  EXPECT_EQ(entries(dir), expected) << "a selection config added must be added here and to configs/README.md";
  for (const std::string suffix : {"", "-4096"}) {
    SCOPED_TRACE("suffix '" + suffix + "'");
    std::vector<std::pair<std::string, int64_t>> variants = {{"blockwise", 0}, {"deep-pyramidion-8", 8}};
    if (suffix.empty()) variants.push_back({"deep-pyramidion-16", 16});
    const auto base = ModelConfig::from_json_file((dir / ("blockwise" + suffix + ".json")).string());
    EXPECT_EQ(base.max_source_length, suffix.empty() ? 2048 : 4096);
    for (const auto& [name, fraction] : variants) {
      SCOPED_TRACE(name);
      const auto path = dir / (name + suffix + ".json");
      const auto c = ModelConfig::from_json_file(path.string());
      EXPECT_NO_THROW(c.validate());
      EXPECT_EQ(read_text(path), c.to_json_string() + "\n");  // canonical form, every field spelled out
      if (fraction == 0) {  // no pooling: [] or all 0
        EXPECT_TRUE(std::all_of(c.pooled_lengths.begin(), c.pooled_lengths.end(), [](int64_t k) { return k == 0; }));
      } else {
        // Halving after every encoder layer down to max_source_length / fraction at the last one.
        ASSERT_EQ(c.pooled_lengths.size(), static_cast<size_t>(c.encoder_layers));
        EXPECT_EQ(c.pooled_lengths.back(), c.max_source_length / fraction);
        EXPECT_EQ(c.pooled_lengths.front(), c.max_source_length / 2);
      }
      auto same = c;
      same.pooled_lengths = base.pooled_lengths;
      expect_same_fields(same, base);
    }
  }
}

// ---- defaults and round trips ---------------------------------------------------------------

TEST(ModelConfigJson, MissingKeysTakeTheDefaults) {
  expect_same_fields(ModelConfig::from_json_string("{}"), ModelConfig{});
  ModelConfig expected;
  expected.heads = 4;
  expected.pooler.hard_at_inference = true;
  expect_same_fields(ModelConfig::from_json_string(R"({"heads": 4, "pooler": {"hard_at_inference": true}})"),
                     expected);
  EXPECT_NO_THROW(ModelConfig{}.validate());
}

ModelConfig random_config(std::mt19937_64& rng) {
  auto integer = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  auto real = [&](double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); };
  ModelConfig c;
  c.heads = integer(1, 16);
  c.d_model = c.heads * integer(1, 128);
  c.ffn_size = integer(1, 8192);
  c.encoder_layers = integer(1, 12);
  c.decoder_layers = integer(1, 12);
  c.dropout = real(0.0, 1.0);
  c.attention_dropout = real(0.0, 1.0);
  c.activation = static_cast<Activation>(integer(0, 2));
  c.attention_bias = integer(0, 1);
  c.positions = static_cast<Positions>(integer(0, 2));
  c.scale_embeddings = integer(0, 1);
  c.logits_bias = integer(0, 1);
  c.norm = integer(0, 1) ? Norm::pre : Norm::post;
  c.source_eos = integer(0, 1);
  c.max_source_length = integer(c.source_eos ? 2 : 1, 1 << 16);
  c.max_target_length = integer(1, 4096);
  c.block_size = integer(0, 4096);
  if (integer(0, 2) != 0) {
    int64_t kept = c.max_source_length;
    for (int64_t layer = 0; layer < c.encoder_layers; ++layer) {
      if (integer(0, 1)) {
        kept = integer(1, kept);
        c.pooled_lengths.push_back(kept);
      } else {
        c.pooled_lengths.push_back(0);
      }
    }
  }
  c.pooler.base = 1.0 + real(1e-6, 1000.0);
  c.pooler.keep_order = integer(0, 1);
  c.pooler.hard_at_inference = integer(0, 1);
  c.pooler.score_epsilon = real(0.0, 1e-3);
  c.shared_embeddings = integer(0, 1);
  c.vocab_size = integer(3, 1 << 20);
  c.pad_id = integer(0, c.vocab_size - 1);
  c.bos_id = integer(0, c.vocab_size - 1);  // may be pad_id (PEGASUS)
  do c.eos_id = integer(0, c.vocab_size - 1); while (c.eos_id == c.pad_id);
  return c;
}

// The options that imported checkpoints brought (attention_bias, positions, scale_embeddings,
// logits_bias, source_eos) default to what every configuration meant before them: a config.json
// written before they existed (each preset without those keys) reads as the same model.
TEST(ModelConfigJson, ConfigsWrittenBeforeTheImportOptionsKeepTheirMeaning) {
  const std::vector<std::string> added = {"attention_bias", "positions", "scale_embeddings", "logits_bias",
                                          "source_eos"};
  for (const auto& name : kPresets) {
    SCOPED_TRACE(name);
    const auto preset = ModelConfig::from_json_file((kConfigDir / (name + ".json")).string());
    auto old = nlohmann::ordered_json::parse(read_text(kConfigDir / (name + ".json")));
    for (const auto& key : added) {
      ASSERT_TRUE(old.contains(key)) << key;
      old.erase(key);
    }
    expect_same_fields(ModelConfig::from_json_string(old.dump()), preset);
    EXPECT_TRUE(preset.attention_bias && preset.scale_embeddings && !preset.logits_bias && !preset.source_eos);
    EXPECT_EQ(preset.positions, Positions::sinusoidal);
  }
}

TEST(ModelConfigJson, RandomConfigsRoundTripExactly) {
  std::mt19937_64 rng(20240611);
  for (int i = 0; i < 300; ++i) {
    SCOPED_TRACE("config " + std::to_string(i));
    const auto c = random_config(rng);
    ASSERT_NO_THROW(c.validate()) << c.to_json_string();
    const auto text = c.to_json_string();
    const auto again = ModelConfig::from_json_string(text);
    expect_same_fields(again, c);  // doubles bit for bit
    EXPECT_EQ(again.to_json_string(), text);
  }
}

// One valid change per field: operator== sees each, and each survives the round trip.
TEST(ModelConfigJson, EveryFieldIsComparedAndSerialised) {
  const std::vector<std::pair<const char*, std::function<void(ModelConfig&)>>> changes = {
      {"vocab_size", [](ModelConfig& c) { c.vocab_size = 1000; }},
      {"d_model", [](ModelConfig& c) { c.d_model = 256; }},
      {"heads", [](ModelConfig& c) { c.heads = 4; }},
      {"ffn_size", [](ModelConfig& c) { c.ffn_size = 1024; }},
      {"encoder_layers", [](ModelConfig& c) { c.encoder_layers = 3; }},
      {"decoder_layers", [](ModelConfig& c) { c.decoder_layers = 2; }},
      {"dropout", [](ModelConfig& c) { c.dropout = 0.3; }},
      {"attention_dropout", [](ModelConfig& c) { c.attention_dropout = 0.2; }},
      {"activation", [](ModelConfig& c) { c.activation = Activation::gelu; }},
      {"activation", [](ModelConfig& c) { c.activation = Activation::gelu_tanh; }},
      {"norm", [](ModelConfig& c) { c.norm = Norm::pre; }},
      {"attention_bias", [](ModelConfig& c) { c.attention_bias = false; }},
      {"positions", [](ModelConfig& c) { c.positions = Positions::sinusoidal_pegasus; }},
      {"positions", [](ModelConfig& c) { c.positions = Positions::learned; }},
      {"max_source_length", [](ModelConfig& c) { c.max_source_length = 4096; }},
      {"max_target_length", [](ModelConfig& c) { c.max_target_length = 256; }},
      {"block_size", [](ModelConfig& c) { c.block_size = 256; }},
      {"pooled_lengths", [](ModelConfig& c) { c.pooled_lengths = {0, 0, 0, 0, 0, 512}; }},
      {"pooler.base", [](ModelConfig& c) { c.pooler.base = 2.5; }},
      {"pooler.keep_order", [](ModelConfig& c) { c.pooler.keep_order = false; }},
      {"pooler.hard_at_inference", [](ModelConfig& c) { c.pooler.hard_at_inference = true; }},
      {"pooler.score_epsilon", [](ModelConfig& c) { c.pooler.score_epsilon = 0.0; }},
      {"shared_embeddings", [](ModelConfig& c) { c.shared_embeddings = false; }},
      {"scale_embeddings", [](ModelConfig& c) { c.scale_embeddings = false; }},
      {"logits_bias", [](ModelConfig& c) { c.logits_bias = true; }},
      {"source_eos", [](ModelConfig& c) { c.source_eos = true; }},
      {"pad_id", [](ModelConfig& c) { c.pad_id = 3; }},
      {"bos_id", [](ModelConfig& c) { c.bos_id = 5; }},
      {"bos_id", [](ModelConfig& c) { c.bos_id = 0; }},  // = pad_id: PEGASUS's decoder start
      {"eos_id", [](ModelConfig& c) { c.eos_id = 7; }},
  };
  const ModelConfig base;
  for (const auto& [field, change] : changes) {
    SCOPED_TRACE(field);
    ModelConfig c = base;
    change(c);
    ASSERT_NO_THROW(c.validate());
    EXPECT_FALSE(c == base);
    EXPECT_TRUE(c != base);
    EXPECT_NE(c.to_json_string(), base.to_json_string());
    expect_same_fields(ModelConfig::from_json_string(c.to_json_string()), c);
  }
}

// ---- validation -----------------------------------------------------------------------------

struct InvalidCase {
  std::string field;  // as named in the message, e.g. "pooled_lengths[3]"
  std::string value;  // as printed in the message
  std::function<void(ModelConfig&)> change;
  std::string also = {};  // another part the message must contain
};

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

const std::vector<InvalidCase>& invalid_cases() {
  static const std::vector<InvalidCase> cases = {
      {"format_version", "0", [](ModelConfig& c) { c.format_version = 0; }, "must be >= 1"},
      {"format_version", "2", [](ModelConfig& c) { c.format_version = 2; }, "newer than this library reads (<= 1)"},
      {"vocab_size", "0", [](ModelConfig& c) { c.vocab_size = 0; }, "must be >= 1"},
      {"vocab_size", "-5", [](ModelConfig& c) { c.vocab_size = -5; }},
      {"d_model", "0", [](ModelConfig& c) { c.d_model = 0; }},
      {"heads", "0", [](ModelConfig& c) { c.heads = 0; }},
      {"heads", "3", [](ModelConfig& c) { c.heads = 3; }, "must divide d_model = 512"},
      {"heads", "8", [](ModelConfig& c) { c.d_model = 100; }, "must divide d_model = 100"},
      {"ffn_size", "0", [](ModelConfig& c) { c.ffn_size = 0; }},
      {"encoder_layers", "0", [](ModelConfig& c) { c.encoder_layers = 0; }},
      {"decoder_layers", "-1", [](ModelConfig& c) { c.decoder_layers = -1; }},
      {"dropout", "-0.1", [](ModelConfig& c) { c.dropout = -0.1; }, "must be in [0, 1)"},
      {"dropout", "1", [](ModelConfig& c) { c.dropout = 1.0; }, "must be in [0, 1)"},
      {"dropout", "nan", [](ModelConfig& c) { c.dropout = kNaN; }},
      {"attention_dropout", "1.5", [](ModelConfig& c) { c.attention_dropout = 1.5; }},
      {"activation", "7", [](ModelConfig& c) { c.activation = static_cast<Activation>(7); }, "relu, gelu, gelu_tanh"},
      {"positions", "5", [](ModelConfig& c) { c.positions = static_cast<Positions>(5); },
       "sinusoidal, sinusoidal_pegasus, learned"},
      {"max_source_length", "1", [](ModelConfig& c) { c.max_source_length = 1; c.source_eos = true; },
       "must be >= 2 with source_eos"},
      {"norm", "9", [](ModelConfig& c) { c.norm = static_cast<Norm>(9); }, "pre, post"},
      {"max_source_length", "0", [](ModelConfig& c) { c.max_source_length = 0; }},
      {"max_target_length", "0", [](ModelConfig& c) { c.max_target_length = 0; }},
      {"block_size", "-1", [](ModelConfig& c) { c.block_size = -1; }, "must be >= 0"},
      {"pooled_lengths", "[512, 256]", [](ModelConfig& c) { c.pooled_lengths = {512, 256}; },
       "encoder_layers = 6"},
      {"pooled_lengths[1]", "-1", [](ModelConfig& c) { c.pooled_lengths = {0, -1, 0, 0, 0, 0}; }, "must be >= 0"},
      {"pooled_lengths[0]", "9000", [](ModelConfig& c) { c.pooled_lengths = {9000, 0, 0, 0, 0, 0}; },
       "max_source_length = 8192"},
      {"pooled_lengths[3]", "1024", [](ModelConfig& c) { c.pooled_lengths = {0, 512, 0, 1024, 0, 0}; },
       "pooled_lengths[1] = 512"},
      {"pooler.base", "1", [](ModelConfig& c) { c.pooler.base = 1.0; }, "> 1"},
      {"pooler.base", "0.5", [](ModelConfig& c) { c.pooler.base = 0.5; }},
      {"pooler.base", "inf", [](ModelConfig& c) { c.pooler.base = kInf; }},
      {"pooler.base", "nan", [](ModelConfig& c) { c.pooler.base = kNaN; }},
      {"pooler.score_epsilon", "-1e-05", [](ModelConfig& c) { c.pooler.score_epsilon = -1e-5; }, ">= 0"},
      {"pad_id", "-1", [](ModelConfig& c) { c.pad_id = -1; }, "[0, vocab_size = 32000)"},
      {"pad_id", "32000", [](ModelConfig& c) { c.pad_id = 32000; }},
      {"bos_id", "32000", [](ModelConfig& c) { c.bos_id = 32000; }},
      {"eos_id", "40000", [](ModelConfig& c) { c.eos_id = 40000; }},
      {"eos_id", "0", [](ModelConfig& c) { c.eos_id = 0; }, "must differ from pad_id = 0"},
  };
  return cases;
}

TEST(ModelConfigValidate, EveryInvalidFieldIsNamedWithItsValue) {
  for (const auto& invalid : invalid_cases()) {
    SCOPED_TRACE(invalid.field + " = " + invalid.value);
    ModelConfig c;
    invalid.change(c);
    const auto message = message_of<std::invalid_argument>([&] { c.validate(); });
    EXPECT_CONTAINS(message, "ModelConfig." + invalid.field + " = " + invalid.value);
    if (!invalid.also.empty()) {
      EXPECT_CONTAINS(message, invalid.also);
    }
  }
}

// The same configurations written as JSON are rejected on load, naming the field (JSON has no NaN
// or infinity: those are written as null and rejected as a value of the wrong type).
TEST(ModelConfigValidate, InvalidFieldsAreRejectedOnLoad) {
  for (const auto& invalid : invalid_cases()) {
    SCOPED_TRACE(invalid.field + " = " + invalid.value);
    ModelConfig c;
    invalid.change(c);
    if (invalid.field == "activation" || invalid.field == "norm" || invalid.field == "positions") {
      // No JSON spelling exists for a value outside the enum: writing it is refused.
      EXPECT_CONTAINS(message_of<std::invalid_argument>([&] { (void)c.to_json_string(); }), invalid.value);
      continue;
    }
    const auto text = c.to_json_string();
    EXPECT_CONTAINS(message_of<std::invalid_argument>([&] { ModelConfig::from_json_string(text); }),
                    "ModelConfig." + invalid.field);
  }
}

TEST(ModelConfigValidate, AnInvalidConfigIsNeverWritten) {
  TempDir dir;
  ModelConfig c;
  c.heads = 3;
  const auto path = dir.path() / "config.json";
  EXPECT_CONTAINS(message_of<std::invalid_argument>([&] { c.to_json_file(path.string()); }),
                  "ModelConfig.heads = 3 must divide d_model = 512");
  EXPECT_TRUE(entries(dir.path()).empty());
}

// ---- JSON errors ----------------------------------------------------------------------------

TEST(ModelConfigJson, KeyTypeAndSyntaxErrorsNameTheKey) {
  struct Case {
    std::string json;
    std::vector<std::string> expected;  // parts of the message
  };
  const std::vector<Case> cases = {
      {R"({"hedas": 8})", {"unknown key 'hedas'", "did you mean 'heads'?"}},
      {R"({"heads": 8, "pooling": [1]})", {"unknown key 'pooling'"}},
      {R"({"pooler": {"bsae": 20}})", {"unknown key 'pooler.bsae'", "did you mean 'pooler.base'?"}},
      {R"({"keep_order": false})", {"unknown key 'keep_order'", "did you mean 'pooler.keep_order'?"}},
      {R"({"heads": "8"})", {"ModelConfig.heads must be an integer", "\"8\" (string)"}},
      {R"({"heads": 8.5})", {"ModelConfig.heads must be an integer", "8.5 (number)"}},
      {R"({"heads": 8.0})", {"ModelConfig.heads must be an integer"}},
      {R"({"heads": null})", {"ModelConfig.heads must be an integer", "null"}},
      {R"({"vocab_size": 18446744073709551615})", {"ModelConfig.vocab_size = 18446744073709551615 is too large"}},
      {R"({"vocab_size": -3})", {"ModelConfig.vocab_size = -3 must be >= 1"}},
      {R"({"dropout": "0.1"})", {"ModelConfig.dropout must be a number", "\"0.1\""}},
      {R"({"dropout": 1})", {"ModelConfig.dropout = 1 must be in [0, 1)"}},
      {R"({"shared_embeddings": 1})", {"ModelConfig.shared_embeddings must be true or false", "1 (number)"}},
      {R"({"activation": "swish"})", {R"(ModelConfig.activation = "swish" must be one of "relu", "gelu")"}},
      {R"({"activation": 1})", {"ModelConfig.activation must be one of the strings \"relu\", \"gelu\""}},
      {R"({"norm": "Pre"})", {R"(ModelConfig.norm = "Pre" must be one of "pre", "post")"}},
      {R"({"pooled_lengths": 512})", {"ModelConfig.pooled_lengths must be an array of integers", "512"}},
      {R"({"pooled_lengths": [0, 0, 0, 0, 0, "512"]})", {"ModelConfig.pooled_lengths[5] must be an integer"}},
      {R"({"pooled_lengths": [0, 0, 0, 0, 1024, 2048]})", {"ModelConfig.pooled_lengths[5] = 2048"}},
      {R"({"pooler": true})", {"ModelConfig.pooler must be an object", "true (boolean)"}},
      {R"({"pooler": {"keep_order": "yes"}})", {"ModelConfig.pooler.keep_order must be true or false"}},
      {R"({"pooler": {"base": 1}})", {"ModelConfig.pooler.base = 1 must be finite and > 1"}},
      {R"({"heads": 8, "heads": 4})", {"duplicate key 'heads'"}},
      {R"({"pooler": {"base": 2, "base": 3}})", {"duplicate key 'pooler.base'"}},
      {R"({"format_version": 2, "a_field_from_the_future": 1})", {"ModelConfig.format_version = 2 is newer"}},
      {R"({"format_version": "1"})", {"ModelConfig.format_version must be an integer"}},
      {R"([1, 2])", {"must be an object", "array"}},
      {R"({"heads": 8,})", {"invalid JSON"}},
      {R"({"heads": 8} // a comment)", {"invalid JSON"}},
      {"", {"invalid JSON"}},
      {R"({"dropout": 1e400})", {"invalid JSON", "1e400"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.json);
    const auto message = message_of<std::invalid_argument>([&] { ModelConfig::from_json_string(c.json); });
    for (const auto& part : c.expected) EXPECT_CONTAINS(message, part);
  }
}

TEST(ModelConfigJson, TheUnknownKeyMessageListsTheKnownKeys) {
  const auto message = message_of<std::invalid_argument>([] { ModelConfig::from_json_string(R"({"layers": 6})"); });
  EXPECT_CONTAINS(message, "unknown key 'layers'");
  EXPECT_CONTAINS(message, "encoder_layers");
  EXPECT_CONTAINS(message, "pooled_lengths");
}

// ---- files ----------------------------------------------------------------------------------

TEST(ModelConfigJson, HelpListsEveryFieldWithItsDefault) {
  const auto help = ModelConfig::help_text();
  const auto fields = nlohmann::ordered_json::parse(ModelConfig{}.to_json_string());
  for (const auto& item : fields.items())
    EXPECT_NE(help.find("  " + item.key() + " = " + item.value().dump()), std::string::npos)
        << item.key() << " (with its default) is missing from the help";
  EXPECT_EQ(static_cast<size_t>(std::count(help.begin(), help.end(), '\n')), fields.size());
}

TEST(ModelConfigFile, WritesAtomicallyAndLeavesNoTemporaryFile) {
  TempDir dir;
  const auto path = dir.path() / "config.json";
  std::mt19937_64 rng(7);
  for (int i = 0; i < 3; ++i) {  // the first write creates the file, the others replace it
    const auto c = random_config(rng);
    c.to_json_file(path.string());
    EXPECT_EQ(entries(dir.path()), std::vector<std::string>{"config.json"});
    EXPECT_EQ(read_text(path), c.to_json_string() + "\n");
    expect_same_fields(ModelConfig::from_json_file(path.string()), c);
  }
  // A path without a directory part writes to the current directory.
  const auto cwd = fs::current_path();
  fs::current_path(dir.path());
  ModelConfig{}.to_json_file("plain.json");
  fs::current_path(cwd);
  EXPECT_EQ(entries(dir.path()), (std::vector<std::string>{"config.json", "plain.json"}));
}

TEST(ModelConfigFile, AFailedWriteThrowsRuntimeErrorNamingThePath) {
  TempDir dir;
  // No such directory.
  const auto missing = (dir.path() / "no-such-dir" / "config.json").string();
  EXPECT_CONTAINS(message_of<std::runtime_error>([&] { ModelConfig{}.to_json_file(missing); }), missing);
  // The parent is a file.
  write_text(dir.path() / "file", "x");
  const auto under_file = (dir.path() / "file" / "config.json").string();
  EXPECT_CONTAINS(message_of<std::runtime_error>([&] { ModelConfig{}.to_json_file(under_file); }), under_file);
  // The target is a directory: the temporary file is written, the rename fails, and the temporary
  // file is removed.
  fs::create_directory(dir.path() / "sub");
  const auto onto_dir = (dir.path() / "sub").string();
  EXPECT_CONTAINS(message_of<std::runtime_error>([&] { ModelConfig{}.to_json_file(onto_dir); }), onto_dir);
  EXPECT_EQ(entries(dir.path()), (std::vector<std::string>{"file", "sub"}));
  EXPECT_TRUE(entries(dir.path() / "sub").empty());
}

TEST(ModelConfigFile, AnUnwritableDirectoryThrowsAndKeepsTheOldFile) {
  TempDir dir;
  const auto path = (dir.path() / "config.json").string();
  ModelConfig old;
  old.to_json_file(path);
  fs::permissions(dir.path(), fs::perms::owner_read | fs::perms::owner_exec);
  if (::access(dir.path().c_str(), W_OK) == 0) GTEST_SKIP() << "running with permission to write anywhere (root)";
  ModelConfig changed;
  changed.heads = 4;
  EXPECT_CONTAINS(message_of<std::runtime_error>([&] { changed.to_json_file(path); }), path);
  EXPECT_EQ(entries(dir.path()), std::vector<std::string>{"config.json"});
  expect_same_fields(ModelConfig::from_json_file(path), old);
}

TEST(ModelConfigFile, ReadErrorsNameThePath) {
  TempDir dir;
  const auto missing = (dir.path() / "missing.json").string();
  auto message = message_of<std::runtime_error>([&] { ModelConfig::from_json_file(missing); });
  EXPECT_CONTAINS(message, missing);
  EXPECT_CONTAINS(message, "No such file");
  message = message_of<std::runtime_error>([&] { ModelConfig::from_json_file(dir.path().string()); });
  EXPECT_CONTAINS(message, dir.path().string());
  EXPECT_CONTAINS(message, "is a directory");
}

TEST(ModelConfigFile, ContentErrorsNameThePathAndTheField) {
  TempDir dir;
  const auto bad_value = (dir.path() / "bad-value.json").string();
  write_text(bad_value, R"({"d_model": 512, "heads": 3})");
  auto message = message_of<std::invalid_argument>([&] { ModelConfig::from_json_file(bad_value); });
  EXPECT_CONTAINS(message, bad_value);
  EXPECT_CONTAINS(message, "ModelConfig.heads = 3 must divide d_model = 512");

  const auto bad_syntax = (dir.path() / "bad-syntax.json").string();
  write_text(bad_syntax, "{\"heads\": 8,\n");
  message = message_of<std::invalid_argument>([&] { ModelConfig::from_json_file(bad_syntax); });
  EXPECT_CONTAINS(message, bad_syntax);
  EXPECT_CONTAINS(message, "invalid JSON");

  const auto typo = (dir.path() / "typo.json").string();
  write_text(typo, R"({"decoder_layer": 6})");
  message = message_of<std::invalid_argument>([&] { ModelConfig::from_json_file(typo); });
  EXPECT_CONTAINS(message, typo);
  EXPECT_CONTAINS(message, "unknown key 'decoder_layer' (did you mean 'decoder_layers'?)");
}

TEST(ModelConfigEnums, NamesAreTheJsonSpellings) {
  EXPECT_EQ(pyramidion::to_string(Activation::relu), "relu");
  EXPECT_EQ(pyramidion::to_string(Activation::gelu), "gelu");
  EXPECT_EQ(pyramidion::to_string(Activation::gelu_tanh), "gelu_tanh");
  EXPECT_EQ(pyramidion::to_string(Positions::sinusoidal), "sinusoidal");
  EXPECT_EQ(pyramidion::to_string(Positions::sinusoidal_pegasus), "sinusoidal_pegasus");
  EXPECT_EQ(pyramidion::to_string(Positions::learned), "learned");
  EXPECT_THROW(pyramidion::to_string(static_cast<Positions>(9)), std::invalid_argument);
  EXPECT_EQ(pyramidion::to_string(Norm::pre), "pre");
  EXPECT_EQ(pyramidion::to_string(Norm::post), "post");
  EXPECT_THROW(pyramidion::to_string(static_cast<Norm>(5)), std::invalid_argument);
}

}  // namespace
