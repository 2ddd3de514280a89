// Tests of Tokenizer (src/data/tokenizer.cpp): training on a generated corpus, special ids, encode ->
// decode round trips (newlines included), normalization, byte offsets, save/load and serialized
// round trips, determinism, concurrent encoding, every error path, and the windows of long lines
// (bounded encodings are exact prefixes; cuts at word boundaries change nothing on real papers but
// sentencepiece's ties; only the windows kept are encoded).
#include <pyramidion/data.h>
#include <pyramidion/tokenizer.h>

#include "data/tokenizer_windows.h"
#include "support/test_support.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>
#include "util/output_file.h"

namespace {

namespace fs = std::filesystem;
using pyramidion::Tokenizer;
using pyramidion::TokenizerTrainOptions;

using pyramidion_test::message_of;

// English-like sentences from a small grammar: every character of a held-out sentence (another
// seed) occurs in the training corpus, so held-out text has no unk.
std::string sentence(std::mt19937& rng) {
  static const std::vector<std::string> subjects = {
      "The model", "A summary", "Every encoder layer", "The pooling operator", "This document", "The decoder",
      "Our experiment", "The long report", "A reviewer", "The tournament", "Each attention head", "The baseline",
      "My colleague", "The scoring network", "A question", "The patent office", "Their benchmark", "One block"};
  static const std::vector<std::string> verbs = {
      "selects", "keeps", "compresses", "reads", "attends to", "summarizes", "ignores", "scores", "ranks",
      "merges", "discards", "describes", "highlights", "translates", "predicts", "evaluates", "sorts", "visits"};
  static const std::vector<std::string> adjectives = {
      "", "relevant ", "hidden ", "long ", "scientific ", "pooled ", "noisy ", "quadratic ", "sparse ", "brief ",
      "unusual ", "hierarchical ", "expensive ", "random ", "frozen ", "largest ", "weighted ", "jumbled "};
  static const std::vector<std::string> objects = {
      "tokens", "blocks", "representations", "abstracts", "articles", "predictions", "states", "descriptions",
      "layers", "candidates", "sentences", "paragraphs", "documents", "queries", "vectors", "embeddings",
      "experiments", "gradients", "matrices", "windows"};
  static const std::vector<std::string> tails = {
      ".", " quickly.", " without padding.", " in 2021.", ", then stops.", " (see Table 3).", "; it works!",
      " at 512 tokens.", "?", " with k = 8.", " twice a day.", " \"by design\".", " - mostly.", " for 4.5 hours.",
      " on GPUs & CPUs.", " [citation needed].", ": 7% faster.", " under budget."};
  auto pick = [&](const std::vector<std::string>& v) { return v[rng() % v.size()]; };
  return pick(subjects) + " " + pick(verbs) + " the " + pick(adjectives) + pick(objects) + pick(tails);
}

// `count` texts of 1 to 4 lines of 1 to 3 sentences.
std::vector<std::string> corpus(uint32_t seed, int count) {
  std::mt19937 rng(seed);
  std::vector<std::string> texts;
  for (int t = 0; t < count; ++t) {
    std::string text;
    const int lines = 1 + static_cast<int>(rng() % 4);
    for (int l = 0; l < lines; ++l) {
      if (l) text += "\n";
      const int sentences = 1 + static_cast<int>(rng() % 3);
      for (int s = 0; s < sentences; ++s) {
        if (s) text += ' ';
        text += sentence(rng);
      }
    }
    texts.push_back(text);
  }
  return texts;
}

TokenizerTrainOptions small_options(const std::string& model_type = "unigram") {
  return TokenizerTrainOptions().vocab_size(200).model_type(model_type == "bpe" ? pyramidion::TokenizerModel::bpe
                                                                                : pyramidion::TokenizerModel::unigram);
}

// Trained once for the suites that only read it.
const Tokenizer& unigram() {
  static const Tokenizer tokenizer = Tokenizer::train(corpus(1, 300), small_options("unigram"));
  return tokenizer;
}
const Tokenizer& bpe() {
  static const Tokenizer tokenizer = Tokenizer::train(corpus(1, 300), small_options("bpe"));
  return tokenizer;
}

// A piece as text: "\u2581" (3 bytes in UTF-8) read as a space.
std::string spaced(const std::string& piece) {
  const std::string mark = "\u2581";
  std::string out;
  for (size_t i = 0; i < piece.size();) {
    if (piece.compare(i, mark.size(), mark) == 0) {
      out.push_back(' ');
      i += mark.size();
    } else {
      out.push_back(piece[i++]);
    }
  }
  return out;
}

fs::path scratch_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("pyramidion_tokenizer_test_" + name + "_" + std::to_string(::getpid()));
  pyramidion::detail::remove_tree(fs::path(dir).string());
  fs::create_directories(dir);
  return dir;
}

TEST(TokenizerTrain, SpecialIdsAreFixed) {
  for (const Tokenizer* t : {&unigram(), &bpe()}) {
    EXPECT_EQ(t->vocab_size(), 200);
    EXPECT_EQ(t->pad_id(), 0);
    EXPECT_EQ(t->bos_id(), 1);
    EXPECT_EQ(t->eos_id(), 2);
    EXPECT_EQ(t->unk_id(), 3);
    EXPECT_EQ(t->id_to_piece(0), "<pad>");
    EXPECT_EQ(t->id_to_piece(1), "<s>");
    EXPECT_EQ(t->id_to_piece(2), "</s>");
    EXPECT_EQ(t->id_to_piece(3), "<unk>");
    EXPECT_EQ(t->newline_id(), 4);
    EXPECT_EQ(t->id_to_piece(4), "\n");
  }
}

TEST(TokenizerTrain, NormalTextHasNoSpecialIds) {
  for (const Tokenizer* t : {&unigram(), &bpe()}) {
    for (const std::string& text : corpus(2, 50))
      for (const int64_t id : t->encode(text)) {
        EXPECT_GE(id, 4) << text;
        EXPECT_LT(id, t->vocab_size());
      }
    // A character the corpus never had is the only way to get a special id: unk.
    const auto ids = t->encode("The model keeps \u00e9t\u00e9 tokens.");
    EXPECT_EQ(std::count(ids.begin(), ids.end(), t->unk_id()), 2);
    for (const int64_t id : ids) EXPECT_TRUE(id == t->unk_id() || id >= 4);
    // The special pieces' text is text, not a special id.
    for (const int64_t id : t->encode("<pad> <s> </s> <unk>")) EXPECT_TRUE(id == t->unk_id() || id >= 4);
  }
}

TEST(TokenizerRoundTrip, HeldOutTextIsReproducedExactly) {
  for (const Tokenizer* t : {&unigram(), &bpe()}) {
    for (const std::string& text : corpus(3, 100)) EXPECT_EQ(t->decode(t->encode(text)), text);
    EXPECT_EQ(t->decode(t->encode("")), "");
    EXPECT_TRUE(t->encode("").empty());
  }
}

TEST(TokenizerRoundTrip, NewlinesAndEmptyLinesSurvive) {
  const Tokenizer& t = unigram();
  const std::string text = "The model keeps the abstract.\n\nA reviewer reads it.\nThe decoder stops.\n";
  const auto ids = t.encode(text);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), t.newline_id()), 4);
  EXPECT_EQ(t.decode(ids), text);
  EXPECT_EQ(t.decode(t.encode("\n")), "\n");
  // Each line is encoded as sentencepiece saw it in training: a line after a newline encodes as it
  // does on its own.
  const auto alone = t.encode("A reviewer reads it.");
  const auto after = t.encode("The decoder stops.\nA reviewer reads it.");
  ASSERT_GT(after.size(), alone.size());
  EXPECT_EQ(std::vector<int64_t>(after.end() - alone.size(), after.end()), alone);
}

TEST(TokenizerRoundTrip, WhitespaceIsNormalized) {
  const Tokenizer& t = unigram();
  EXPECT_EQ(t.decode(t.encode("  The model \t keeps   tokens.  \n  A summary. ")), "The model keeps tokens.\nA summary.");
  EXPECT_EQ(t.decode(t.encode("The model\r\nA summary.")), "The model\nA summary.");
  // NFKC: the ligature U+FB01 is "fi"; full-width letters are ASCII.
  EXPECT_EQ(t.decode(t.encode("\xef\xac\x81nal")), "final");
  EXPECT_EQ(t.decode(t.encode("\xef\xbc\xb4he")), "The");
}

TEST(TokenizerRoundTrip, DecodeSkipsPadBosEos) {
  const Tokenizer& t = unigram();
  const std::string text = "The decoder ranks the hidden states.";
  std::vector<int64_t> ids = {t.bos_id()};
  for (const int64_t id : t.encode(text)) ids.push_back(id);
  ids.insert(ids.end(), {t.eos_id(), t.pad_id(), t.pad_id()});
  EXPECT_EQ(t.decode(ids), text);
  EXPECT_EQ(t.decode({}), "");
  EXPECT_EQ(t.decode({t.pad_id(), t.bos_id(), t.eos_id()}), "");
}

TEST(TokenizerRoundTrip, DecodeRejectsOutOfRangeIds) {
  const Tokenizer& t = unigram();
  EXPECT_CONTAINS(message_of<std::invalid_argument>([&] { t.decode({5, 200, 6}); }), "ids[1] = 200");
  EXPECT_CONTAINS(message_of<std::invalid_argument>([&] { t.decode({-1}); }), "ids[0] = -1 is outside [0, vocab_size = 200)");
  EXPECT_CONTAINS(message_of<std::invalid_argument>([&] { t.id_to_piece(200); }), "id = 200");
}

TEST(TokenizerOffsets, SpansCoverTheTextInOrder) {
  for (const Tokenizer* t : {&unigram(), &bpe()}) {
    for (const std::string& text : corpus(4, 40)) {
      const auto pieces = t->encode_with_offsets(text);
      std::vector<int64_t> ids;
      std::string concatenated;
      size_t previous_end = 0;
      for (const auto& p : pieces) {
        ids.push_back(p.id);
        EXPECT_LE(previous_end, p.begin) << text;
        EXPECT_LE(p.begin, p.end);
        EXPECT_LE(p.end, text.size());
        const std::string span = text.substr(p.begin, p.end - p.begin);
        concatenated += span;
        previous_end = p.end;
        // The span is the piece, "\u2581" read as a space, except at a line start, where the
        // piece's leading "\u2581" stands for no text.
        std::string piece = spaced(t->id_to_piece(p.id));
        if (p.begin == 0 || text[p.begin - 1] == '\n') {
          ASSERT_FALSE(piece.empty());
          if (piece[0] == ' ') piece.erase(0, 1);
        }
        EXPECT_EQ(span, piece) << text;
      }
      EXPECT_EQ(ids, t->encode(text));
      // Normalized text: the spans tile it.
      EXPECT_EQ(concatenated, text);
    }
  }
}

TEST(TokenizerOffsets, SpansPointIntoTheOriginalText) {
  const Tokenizer& t = unigram();
  // Removed spaces are in no span; a span never points into them past the text.
  const std::string text = "  The   model\n keeps \u00e9 tokens.";
  const auto pieces = t.encode_with_offsets(text);
  std::vector<int64_t> ids;
  size_t previous_end = 0;
  for (const auto& p : pieces) {
    ids.push_back(p.id);
    EXPECT_LE(previous_end, p.begin);
    EXPECT_LE(p.begin, p.end);
    EXPECT_LE(p.end, text.size());
    previous_end = p.end;
    if (p.id == t.newline_id()) {
      EXPECT_EQ(text.substr(p.begin, p.end - p.begin), "\n");
    }
    if (p.id == t.unk_id()) {
      EXPECT_EQ(text.substr(p.begin, p.end - p.begin), "\u00e9");
    }
  }
  EXPECT_EQ(ids, t.encode(text));
  EXPECT_EQ(std::count(ids.begin(), ids.end(), t.unk_id()), 1);
}

TEST(TokenizerIo, SaveLoadGivesIdenticalEncodings) {
  const fs::path dir = scratch_dir("save");
  const std::string path = (dir / "tokenizer.model").string();
  unigram().save(path);
  bpe().save(path);  // overwrites
  const Tokenizer loaded = Tokenizer::load(path);
  EXPECT_EQ(loaded.serialized(), bpe().serialized());
  EXPECT_EQ(loaded.vocab_size(), 200);
  EXPECT_EQ(loaded.pad_id(), 0);
  for (const std::string& text : corpus(5, 30)) EXPECT_EQ(loaded.encode(text), bpe().encode(text));
  // No temporary file is left next to the model.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
  pyramidion::detail::remove_tree(fs::path(dir).string());
}

TEST(TokenizerIo, FromSerializedGivesIdenticalEncodings) {
  const Tokenizer copy = Tokenizer::from_serialized(unigram().serialized());
  EXPECT_EQ(copy.serialized(), unigram().serialized());
  for (const std::string& text : corpus(6, 30)) EXPECT_EQ(copy.encode(text), unigram().encode(text));
}

TEST(TokenizerIo, ErrorsNameThePath) {
  const fs::path dir = scratch_dir("errors");
  const std::string missing = (dir / "missing.model").string();
  EXPECT_CONTAINS(message_of<std::runtime_error>([&] { Tokenizer::load(missing); }), "'" + missing + "'");

  const std::string garbage = (dir / "garbage.model").string();
  std::ofstream(garbage) << "this is not a sentencepiece model\n";
  EXPECT_CONTAINS(message_of<std::invalid_argument>([&] { Tokenizer::load(garbage); }), "'" + garbage + "'");
  const std::string empty = (dir / "empty.model").string();
  std::ofstream(empty).flush();
  EXPECT_CONTAINS(message_of<std::invalid_argument>([&] { Tokenizer::load(empty); }), "'" + empty + "'");
  EXPECT_CONTAINS(message_of<std::runtime_error>([&] { Tokenizer::load(dir.string()); }), "is a directory");

  EXPECT_CONTAINS(message_of<std::invalid_argument>([&] { Tokenizer::from_serialized("garbage"); }),
                  "not a sentencepiece model");
  const std::string no_dir = (dir / "no" / "such" / "dir" / "tokenizer.model").string();
  EXPECT_CONTAINS(message_of<std::runtime_error>([&] { unigram().save(no_dir); }), "'" + no_dir + "'");
  pyramidion::detail::remove_tree(fs::path(dir).string());
}

TEST(TokenizerTrain, IsDeterministic) {
  for (const std::string type : {"unigram", "bpe"}) {
    const Tokenizer again = Tokenizer::train(corpus(1, 300), small_options(type));
    EXPECT_EQ(again.serialized(), (type == "bpe" ? bpe() : unigram()).serialized()) << type;
    // With several threads too (a unigram model then differs from the one-thread model).
    auto options = small_options(type);
    options.num_threads(2);
    EXPECT_EQ(Tokenizer::train(corpus(1, 300), options).serialized(),
              Tokenizer::train(corpus(1, 300), options).serialized()) << type;
  }
}

TEST(TokenizerTrain, SamplingOfLinesIsDeterministic) {
  // 150 of the corpus' 734 lines are sampled, the same ones every time.
  auto options = small_options();
  options.max_sentences(150);
  auto pieces = [](const Tokenizer& t) {
    std::vector<std::string> v;
    for (int64_t id = 0; id < t.vocab_size(); ++id) v.push_back(t.id_to_piece(id));
    return v;
  };
  const Tokenizer a = Tokenizer::train(corpus(1, 300), options);
  const Tokenizer b = Tokenizer::train(corpus(1, 300), options);
  EXPECT_EQ(a.serialized(), b.serialized());
  EXPECT_NE(pieces(a), pieces(unigram()));  // trained on all lines
}

TEST(TokenizerTrain, LongLinesAreSplitNotDropped) {
  // One line far longer than sentencepiece's limit (4192 bytes), which it would skip.
  std::string line;
  for (const std::string& text : corpus(7, 100)) {
    std::string flat = text;
    std::replace(flat.begin(), flat.end(), '\n', ' ');
    line += (line.empty() ? "" : " ") + flat;
  }
  ASSERT_GT(line.size(), 10000u);
  const Tokenizer t = Tokenizer::train({line}, small_options());
  EXPECT_EQ(t.vocab_size(), 200);
  EXPECT_EQ(t.decode(t.encode("The model keeps the abstract.")), "The model keeps the abstract.");
}

TEST(TokenizerTrain, VocabularyTooSmallOrTooLargeForTheCorpus) {
  auto options = small_options();
  options.vocab_size(20);  // the corpus has more characters
  const std::string small = message_of<std::invalid_argument>([&] { Tokenizer::train(corpus(1, 300), options); });
  EXPECT_CONTAINS(small, "vocab_size = 20");
  EXPECT_CONTAINS(small, "smaller than required_chars");
  options.vocab_size(50000);
  const std::string large = message_of<std::invalid_argument>([&] { Tokenizer::train(corpus(1, 300), options); });
  EXPECT_CONTAINS(large, "vocab_size = 50000");
  EXPECT_CONTAINS(large, "too high");
  options.model_type(pyramidion::TokenizerModel::bpe);
  EXPECT_CONTAINS(message_of<std::invalid_argument>([&] { Tokenizer::train(corpus(1, 300), options); }),
                  "vocab_size = 50000");
}

TEST(TokenizerTrain, InvalidOptionsAndInputs) {
  const auto texts = corpus(1, 20);
  auto check = [&](auto&& modify, const std::string& expected) {
    TokenizerTrainOptions options = small_options();
    modify(options);
    EXPECT_CONTAINS(message_of<std::invalid_argument>([&] { Tokenizer::train(texts, options); }), expected);
  };
  check([](auto& o) { o.vocab_size(7); }, "TokenizerTrainOptions.vocab_size = 7 must be >= 8");
  check([](auto& o) { o.vocab_size(int64_t{1} << 40); }, "TokenizerTrainOptions.vocab_size = 1099511627776");
  check([](auto& o) { o.model_type(static_cast<pyramidion::TokenizerModel>(7)); },
        "TokenizerTrainOptions.model_type = 7 must be one of unigram, bpe");
  check([](auto& o) { o.character_coverage(0.9); }, "TokenizerTrainOptions.character_coverage = 0.9 must be in [0.98, 1]");
  check([](auto& o) { o.character_coverage(1.5); }, "character_coverage = 1.5");
  check([](auto& o) { o.max_sentences(100); }, "TokenizerTrainOptions.max_sentences = 100 must be > 100");
  check([](auto& o) { o.num_threads(0); }, "TokenizerTrainOptions.num_threads = 0");
  check([](auto& o) { o.num_threads(129); }, "TokenizerTrainOptions.num_threads = 129");
  using Symbols = std::vector<std::string>;
  check([](auto& o) { o.reserved_symbols(Symbols{""}); }, "TokenizerTrainOptions.reserved_symbols[0] = \"\" must hold 1 to 64 bytes");
  check([](auto& o) { o.reserved_symbols(Symbols{std::string(65, 'x')}); }, "must hold 1 to 64 bytes");
  check([](auto& o) { o.reserved_symbols(Symbols{"[m]", "a\tb"}); },
        "reserved_symbols[1] = \"a\tb\" must not hold whitespace, control characters or commas");
  check([](auto& o) { o.reserved_symbols(Symbols{"a,b"}); }, "must not hold whitespace, control characters or commas");
  check([](auto& o) { o.reserved_symbols(Symbols{"\xff"}); }, "reserved_symbols[0] = \"\xff\" must be valid UTF-8");
  check([](auto& o) { o.reserved_symbols(Symbols{"</s>"}); }, "reserved_symbols[0] = \"</s>\" is a special piece");
  check([](auto& o) { o.reserved_symbols(Symbols{"[m]", "[n]", "[m]"}); },
        "reserved_symbols[2] = \"[m]\" repeats reserved_symbols[0]");
  EXPECT_CONTAINS(message_of<std::invalid_argument>([] { Tokenizer::train({}); }), "no non-empty line");
  EXPECT_CONTAINS(message_of<std::invalid_argument>([] { Tokenizer::train({"", "\n  \n", "\t"}); }),
                  "the 3 texts have no non-empty line");
}

// A reserved symbol is one piece wherever it occurs, glued to words or not, and never merges with
// its neighbours; the words around it keep the ids they have without it. piece_to_id finds pieces
// and answers -1 for text that is no piece.
TEST(TokenizerTrain, ReservedSymbolsAreOnePieceEverywhere) {
  auto texts = corpus(1, 300);
  const Tokenizer t = Tokenizer::train(texts, small_options().reserved_symbols({"\u27e6", "\u27e7", "<sel>"}));
  EXPECT_EQ(t.piece_to_id("\n"), 4);
  EXPECT_EQ(t.piece_to_id("\u27e6"), 5);
  EXPECT_EQ(t.piece_to_id("\u27e7"), 6);
  EXPECT_EQ(t.piece_to_id("<sel>"), 7);
  EXPECT_EQ(t.piece_to_id("<unk>"), t.unk_id());
  EXPECT_EQ(t.piece_to_id("no such piece at all"), -1);
  const std::string sentence = corpus(2, 1).front();
  const auto plain = t.encode(sentence);
  for (const std::string& marked : {"\u27e6 " + sentence + " \u27e7", "\u27e6" + sentence + "\u27e7"}) {
    const auto ids = t.encode(marked);
    EXPECT_EQ(std::count(ids.begin(), ids.end(), 5), 1) << marked;
    EXPECT_EQ(std::count(ids.begin(), ids.end(), 6), 1) << marked;
    EXPECT_EQ(t.decode(ids), marked);
  }
  // Spaced markers leave the sentence's own ids between them.
  const auto ids = t.encode("\u27e6 " + sentence + " \u27e7");
  const auto open = std::find(ids.begin(), ids.end(), 5), close = std::find(ids.begin(), ids.end(), 6);
  std::vector<int64_t> inside(open + 1, close);
  while (!inside.empty() && t.id_to_piece(inside.front()) == "\u2581") inside.erase(inside.begin());
  while (!inside.empty() && t.id_to_piece(inside.back()) == "\u2581") inside.pop_back();
  EXPECT_EQ(inside, plain);
}

TEST(TokenizerConcurrency, EncodeAndDecodeFromManyThreads) {
  const Tokenizer& t = unigram();
  const auto texts = corpus(8, 50);
  std::vector<std::vector<int64_t>> expected;
  for (const auto& text : texts) expected.push_back(t.encode(text));
  std::vector<int> failures(4, 0);
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w)
    threads.emplace_back([&, w] {
      for (int repeat = 0; repeat < 5; ++repeat)
        for (size_t i = 0; i < texts.size(); ++i)
          if (t.encode(texts[i]) != expected[i] || t.decode(expected[i]) != texts[i]) ++failures[w];
    });
  for (auto& thread : threads) thread.join();
  for (int w = 0; w < 4; ++w) EXPECT_EQ(failures[w], 0) << "thread " << w;
}

// ---- Windows (tokenizer.h, "Windows") ----

using pyramidion::TokenizerModel;
using Windows = pyramidion::detail::TokenizerWindows;

// Tokenizers trained on real papers (the first 12 of the training split), of both kinds.
const Tokenizer& paper_tokenizer(TokenizerModel model) {
  static const auto train = [](TokenizerModel m) {
    auto docs = pyramidion::read_all(std::string(PYRAMIDION_SOURCE_DIR) + "/data/aclsum/train.jsonl");
    docs.resize(12);
    std::vector<std::string> texts;
    for (const auto& d : docs) texts.insert(texts.end(), {d.document, d.summary});
    return Tokenizer::train(texts, TokenizerTrainOptions().vocab_size(500).model_type(m));
  };
  static const Tokenizer unigram_model = train(TokenizerModel::unigram);
  static const Tokenizer bpe_model = train(TokenizerModel::bpe);
  return model == TokenizerModel::bpe ? bpe_model : unigram_model;
}

// `text` with its separators varied at random: spaces as runs of spaces, tabs, a no-break space
// or an ideographic space; line ends with spaces around them, "\r\n" or an empty line; and now and
// then a non-ASCII word (accents, combining marks, CJK, Cyrillic, a ligature, a zero-width space).
std::string messy(const std::string& text, std::mt19937& rng) {
  static const std::vector<std::string> spaces = {" ", "  ", "\t", " \t ", "    ", "\u00a0 ", " \u3000"};
  static const std::vector<std::string> newlines = {"\n", " \n ", "\r\n", "\n\n", "\t\n", "\n  "};
  static const std::vector<std::string> words = {"na\u00efve", "\u00dcn\u00efc\u00f6d\u00e9", "\u4e2d\u6587\u5b57\u7b26",
                                                 "\u041f\u0440\u0438\u0432\u0435\u0442", "e\u0301t\u00e9", "\u00b4",
                                                 "\u200b", "\ufb01nal", "\u2014", "x\u00a0y"};
  std::string out = "  ";  // leading spaces
  for (const char c : text) {
    if (c == ' ') {
      out += spaces[rng() % spaces.size()];
      if (rng() % 20 == 0) out += words[rng() % words.size()] + " ";
    } else if (c == '\n') {
      out += newlines[rng() % newlines.size()];
    } else {
      out += c;
    }
  }
  return out + " \t ";  // trailing whitespace
}

// Held-out papers (the validation split) in the shapes windows must handle: as read (a sentence
// per line), as one long paragraph, messy (above), and the summaries; and small corner cases.
const std::vector<std::string>& window_texts() {
  static const std::vector<std::string> texts = [] {
    auto docs = pyramidion::read_all(std::string(PYRAMIDION_SOURCE_DIR) + "/data/aclsum/valid.jsonl");
    docs.resize(3);
    std::mt19937 rng(7);
    std::vector<std::string> out;
    for (const auto& d : docs) {
      std::string flat = d.document;
      std::replace(flat.begin(), flat.end(), '\n', ' ');
      out.insert(out.end(), {d.document, flat, messy(d.document, rng), messy(flat, rng), d.summary});
    }
    out.insert(out.end(), {"", " ", "\n", "\n\n", "  a  ", "word", " \t leading and trailing \t ",
                           "one line\nand another\n", "\u4e2d\u6587 \u5b57\u7b26 \u4e2d\u6587"});
    return out;
  }();
  return texts;
}

// The longest run of bytes without an ASCII space.
size_t longest_word(const std::string& text) {
  size_t longest = 0, run = 0;
  for (const char c : text) {
    run = c == ' ' ? 0 : run + 1;
    longest = std::max(longest, run);
  }
  return longest;
}

template <typename T>
std::vector<T> prefix(const std::vector<T>& v, size_t n) {
  return std::vector<T>(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(std::min(n, v.size())));
}

// Pieces as comparable tuples.
std::vector<std::tuple<int64_t, size_t, size_t>> spans(const std::vector<Tokenizer::Piece>& pieces) {
  std::vector<std::tuple<int64_t, size_t, size_t>> out;
  for (const auto& p : pieces) out.emplace_back(p.id, p.begin, p.end);
  return out;
}

std::vector<int64_t> ids_of(const std::vector<Tokenizer::Piece>& pieces) {
  std::vector<int64_t> ids;
  for (const auto& p : pieces) ids.push_back(p.id);
  return ids;
}

double total_score(const Tokenizer& t, const std::vector<int64_t>& ids) {
  double score = 0;
  for (const int64_t id : ids) score += Windows::score(t, id);
  return score;
}

TEST(TokenizerWindows, BoundedEncodingIsAPrefixOfTheWholeEncoding) {
  std::mt19937 rng(11);
  for (const auto model : {TokenizerModel::unigram, TokenizerModel::bpe}) {
    const Tokenizer& t = paper_tokenizer(model);
    ASSERT_EQ(Windows::effective_window(t, 100), 100u) << "a trained model's pieces have no inner \\u2581";
    for (const std::string& text : window_texts()) {
      // Windows small enough to cut inside words too (13 bytes), and the tokenizer's own.
      for (const size_t window : {size_t{13}, size_t{97}, size_t{1000}, Windows::kWindowBytes}) {
        SCOPED_TRACE(to_string(model) + ", window " + std::to_string(window) + ", text of " +
                     std::to_string(text.size()) + " bytes");
        const auto whole = Windows::encode(t, text, -1, window);
        const auto pieces = Windows::encode_with_offsets(t, text, -1, window);
        ASSERT_EQ(ids_of(pieces), whole);
        EXPECT_EQ(Windows::count_tokens(t, text, window), static_cast<int64_t>(whole.size()));
        std::vector<size_t> budgets = {0, 1, whole.size(), whole.size() + 1};
        for (int k = 0; k < 4; ++k) budgets.push_back(rng() % (whole.size() + 2));
        for (const size_t n : budgets) {
          EXPECT_EQ(Windows::encode(t, text, static_cast<int64_t>(n), window), prefix(whole, n)) << n;
          EXPECT_EQ(spans(Windows::encode_with_offsets(t, text, static_cast<int64_t>(n), window)),
                    spans(prefix(pieces, n)))
              << n;
        }
      }
      // The public functions: the tokenizer's window.
      const auto whole = t.encode(text);
      for (const size_t n : {size_t{0}, size_t{5}, whole.size() / 2, whole.size() + 3}) {
        EXPECT_EQ(t.encode(text, static_cast<int64_t>(n)), prefix(whole, n));
        EXPECT_EQ(spans(t.encode_with_offsets(text, static_cast<int64_t>(n))), spans(prefix(t.encode_with_offsets(text), n)));
      }
      EXPECT_EQ(t.count_tokens(text), static_cast<int64_t>(whole.size()));
    }
  }
}

// Cutting lines at word boundaries gives sentencepiece's encoding of the whole lines: exactly for
// BPE; for unigram, up to ties (equal-score segmentations, which sentencepiece breaks by the
// rounding of the line's running score), with the same text and score.
TEST(TokenizerWindows, WordBoundaryCutsGiveTheWholeLinesEncoding) {
  for (const auto model : {TokenizerModel::unigram, TokenizerModel::bpe}) {
    const Tokenizer& t = paper_tokenizer(model);
    int64_t compared = 0;
    for (const std::string& text : window_texts()) {
      const auto whole = Windows::encode(t, text, -1, Windows::kWholeLines);
      const auto whole_pieces = Windows::encode_with_offsets(t, text, -1, Windows::kWholeLines);
      // Every window holds a word boundary: no word is cut.
      const size_t shortest = 4 * longest_word(text) + 16;
      for (const size_t window : {shortest, 3 * shortest + 5, size_t{1000}}) {
        SCOPED_TRACE(to_string(model) + ", window " + std::to_string(window) + ", text of " +
                     std::to_string(text.size()) + " bytes");
        const auto ids = Windows::encode(t, text, -1, window);
        const auto pieces = Windows::encode_with_offsets(t, text, -1, window);
        ++compared;
        if (ids == whole) {
          EXPECT_EQ(spans(pieces), spans(whole_pieces));
          continue;
        }
        // A tie: another segmentation of the same text with the same score (a few of the unigram
        // encodings of these papers hold one, e.g. "\u25812" "00" "0" for "\u25812" "0" "00").
        ASSERT_EQ(model, TokenizerModel::unigram) << "BPE merges never cross a word start";
        EXPECT_EQ(t.decode(ids), t.decode(whole));
        EXPECT_NEAR(total_score(t, ids), total_score(t, whole), 1e-6 * std::abs(total_score(t, whole)));
      }
    }
    EXPECT_EQ(compared, 72);
  }
}

// A window without a word boundary (one "word" longer than the window) is cut at a character
// boundary: spans never split a character, and the prefix property still holds (above).
TEST(TokenizerWindows, AWordLongerThanTheWindowIsCutAtACharacterBoundary) {
  std::string word;
  for (int i = 0; i < 200; ++i) word += "\u4e2d\u6587\u00e9x";
  const std::string text = "The model reads " + word + " and stops.";
  for (const auto model : {TokenizerModel::unigram, TokenizerModel::bpe}) {
    const Tokenizer& t = paper_tokenizer(model);
    const auto pieces = Windows::encode_with_offsets(t, text, -1, 64);
    size_t previous_end = 0;
    for (const auto& p : pieces) {
      EXPECT_LE(previous_end, p.begin);
      EXPECT_LE(p.begin, p.end);
      EXPECT_LE(p.end, text.size());
      for (const size_t at : {p.begin, p.end})
        EXPECT_TRUE(at == text.size() || (static_cast<unsigned char>(text[at]) & 0xC0) != 0x80) << at;
      previous_end = p.end;
    }
    EXPECT_EQ(ids_of(pieces), Windows::encode(t, text, -1, 64));
    // The words around the long one are encoded as in the whole line.
    const auto whole = Windows::encode(t, text, -1, Windows::kWholeLines);
    const auto head = t.encode("The model reads");
    EXPECT_EQ(prefix(Windows::encode(t, text, -1, 64), head.size()), head);
    EXPECT_EQ(prefix(whole, head.size()), head);
  }
}

// Memory bounded by what is kept: a bounded encoding of a 4 MB text passes sentencepiece only the
// windows that hold the tokens kept, and no encoding passes it more than a window at once.
TEST(TokenizerWindows, BoundedEncodingEncodesOnlyTheWindowsItKeeps) {
  const Tokenizer& t = paper_tokenizer(TokenizerModel::unigram);
  std::string paragraph, lines;  // one 4 MB line; 4 MB of one-sentence lines
  for (size_t i = 0; paragraph.size() < (size_t{4} << 20); ++i) {
    const std::string& text = window_texts()[(i * 5) % 15];  // the documents as read
    lines += text + "\n";
    std::string flat = text;
    std::replace(flat.begin(), flat.end(), '\n', ' ');
    paragraph += flat + " ";
  }
  auto& calls = Windows::calls();
  for (const std::string* text : {&paragraph, &lines}) {
    SCOPED_TRACE(text == &paragraph ? "one line" : "many lines");
    calls = {};
    EXPECT_EQ(t.encode(*text, 100).size(), 100u);
    EXPECT_LE(calls.bytes, static_cast<int64_t>(Windows::kWindowBytes));
    calls = {};
    EXPECT_EQ(t.encode_with_offsets(*text, 100).size(), 100u);
    EXPECT_LE(calls.bytes, static_cast<int64_t>(Windows::kWindowBytes));
    // 20,000 tokens are about 80 KB of text: two windows.
    calls = {};
    EXPECT_EQ(t.encode(*text, 20000).size(), 20000u);
    EXPECT_LE(calls.bytes, static_cast<int64_t>(2 * Windows::kWindowBytes + 100000));
    calls = {};
    EXPECT_EQ(t.encode(*text, 0).size(), 0u);
    EXPECT_EQ(calls.calls, 0);
    // The whole text: window by window.
    calls = {};
    const int64_t count = t.count_tokens(*text);
    EXPECT_LE(calls.largest, static_cast<int64_t>(Windows::kWindowBytes));
    EXPECT_EQ(calls.bytes, static_cast<int64_t>(text->size() - std::count(text->begin(), text->end(), '\n')));
    calls = {};
    EXPECT_EQ(static_cast<int64_t>(t.encode(*text).size()), count);
    EXPECT_LE(calls.largest, static_cast<int64_t>(Windows::kWindowBytes));
  }
}

TEST(TokenizerWindows, MaxTokensMustNotBeNegative) {
  const Tokenizer& t = unigram();
  EXPECT_CONTAINS(message_of<std::invalid_argument>([&] { t.encode("The model.", -1); }),
                  "Tokenizer::encode: max_tokens = -1 must be >= 0");
  EXPECT_CONTAINS(message_of<std::invalid_argument>([&] { t.encode_with_offsets("The model.", -2); }),
                  "Tokenizer::encode_with_offsets: max_tokens = -2 must be >= 0");
  EXPECT_TRUE(t.encode_with_offsets("The model.", 0).empty());
}

}  // namespace
