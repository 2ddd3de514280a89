// Tests of ROUGE (src/eval/rouge.cpp, src/eval/porter_stemmer.cpp): scores worked out by hand, the
// tokenizer's rules, Porter's own examples, empty inputs, the bootstrap aggregation, the reports
// and every error path (the reading of prediction/reference files: evaluate_test.cpp). Agreement with the rouge-score package
// itself is checked by scripts/check_rouge.sh (ctest rouge.matches_rouge_score_package).
#include <pyramidion/rouge.h>

#include "support/model_fixtures.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using pyramidion::rouge;
using pyramidion::rouge_corpus;
using pyramidion::rouge_tokenize;
using pyramidion::RougeCorpusOptions;
using pyramidion::RougeScore;
using pyramidion_test::error_of;

using Tokens = std::vector<std::string>;

void expect_score(const RougeScore& s, double precision, double recall, double f1, const char* what) {
  SCOPED_TRACE(what);
  EXPECT_NEAR(s.precision, precision, 1e-12);
  EXPECT_NEAR(s.recall, recall, 1e-12);
  EXPECT_NEAR(s.f1, f1, 1e-12);
}

void expect_zero(const pyramidion::RougeScores& s) {
  expect_score(s.rouge1, 0, 0, 0, "rouge1");
  expect_score(s.rouge2, 0, 0, 0, "rouge2");
  expect_score(s.rougeL, 0, 0, 0, "rougeL");
  expect_score(s.rougeLsum, 0, 0, 0, "rougeLsum");
}

TEST(RougeTokenize, LowercasesAndSplitsAtEverythingButLettersAndDigits) {
  EXPECT_EQ(rouge_tokenize("Hello, World! It's 2024."), (Tokens{"hello", "world", "it", "s", "2024"}));
  EXPECT_EQ(rouge_tokenize("  e-mail\tfoo_bar\nx/y  "), (Tokens{"e", "mail", "foo", "bar", "x", "y"}));
  EXPECT_EQ(rouge_tokenize("3.14 1,000"), (Tokens{"3", "14", "1", "000"}));
  EXPECT_TRUE(rouge_tokenize("").empty());
  EXPECT_TRUE(rouge_tokenize(" ... !!! ").empty());
}

TEST(RougeTokenize, NonAsciiCharactersSeparateTokens) {
  EXPECT_EQ(rouge_tokenize("caf\xC3\xA9 na\xC3\xAFve \xCE\xB1\xCE\xB2"), (Tokens{"caf", "na", "ve"}));
  // Python lowercases U+0130 to "i" + a combining dot and the Kelvin sign U+212A to "k".
  EXPECT_EQ(rouge_tokenize("\xC4\xB0stanbul"), (Tokens{"i", "stanbul"}));
  EXPECT_EQ(rouge_tokenize("5\xE2\x84\xAA ok"), (Tokens{"5k", "ok"}));
  EXPECT_EQ(rouge_tokenize("a\xFF\xFE" "b"), (Tokens{"a", "b"}));  // invalid UTF-8: separators too
}

TEST(RougeTokenize, StemsOnlyTokensLongerThanThreeCharacters) {
  EXPECT_EQ(rouge_tokenize("Cats ran was this", true), (Tokens{"cat", "ran", "was", "thi"}));
  EXPECT_EQ(rouge_tokenize("Cats ran was this", false), (Tokens{"cats", "ran", "was", "this"}));
  EXPECT_EQ(rouge_tokenize("1990s", true), (Tokens{"1990"}));
}

// Examples of Porter (1980), one or more per step, and NLTK's departures from the paper.
TEST(RougeStemmer, PorterExamples) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      // step 1a
      {"caresses", "caress"}, {"ponies", "poni"}, {"caress", "caress"}, {"cats", "cat"},
      // step 1b
      {"feed", "feed"}, {"agreed", "agre"}, {"plastered", "plaster"}, {"bled", "bled"}, {"motoring", "motor"},
      {"sing", "sing"}, {"conflated", "conflat"}, {"troubled", "troubl"}, {"sized", "size"}, {"hopping", "hop"},
      {"tanned", "tan"}, {"falling", "fall"}, {"hissing", "hiss"}, {"fizzed", "fizz"}, {"failing", "fail"},
      {"filing", "file"},
      // step 1c
      {"happy", "happi"},
      // steps 2-4 (complete stems)
      {"relational", "relat"}, {"conditional", "condit"}, {"rational", "ration"}, {"valenci", "valenc"},
      {"hesitanci", "hesit"}, {"digitizer", "digit"}, {"generalization", "gener"},
      {"generalizations", "gener"}, {"oscillators", "oscil"},
      // step 5
      {"probate", "probat"}, {"rate", "rate"}, {"cease", "ceas"}, {"controll", "control"}, {"roll", "roll"},
      // NLTK: irregular forms, "ies"/"ied" of four letters, y -> i after a consonant only
      {"dying", "die"}, {"skies", "sky"}, {"news", "news"}, {"proceed", "proceed"}, {"ties", "tie"},
      {"died", "die"}, {"cried", "cri"}, {"enjoy", "enjoy"}};
  for (const auto& [word, stem] : cases) EXPECT_EQ(rouge_tokenize(word, true), Tokens{stem}) << word;
}

TEST(Rouge, HandComputedPrefix) {
  // prediction: the cat sat (3 tokens); reference: the cat sat on the mat (6 tokens).
  const auto s = rouge("The cat sat.", "the cat sat on the mat");
  expect_score(s.rouge1, 1.0, 3.0 / 6, 2.0 / 3, "rouge1: 3 of 3 unigrams, 3 of 6");
  expect_score(s.rouge2, 1.0, 2.0 / 5, 4.0 / 7, "rouge2: 2 of 2 bigrams, 2 of 5");
  expect_score(s.rougeL, 1.0, 3.0 / 6, 2.0 / 3, "rougeL: LCS 3");
  expect_score(s.rougeLsum, 1.0, 3.0 / 6, 2.0 / 3, "rougeLsum: one sentence = rougeL");
}

TEST(Rouge, HandComputedClippingAndOrder) {
  // "the" 4 times against once: the overlap is clipped to 1.
  const auto clipped = rouge("the the the the", "the cat");
  expect_score(clipped.rouge1, 1.0 / 4, 1.0 / 2, 1.0 / 3, "rouge1 clipped");
  expect_score(clipped.rouge2, 0, 0, 0, "rouge2: no common bigram");
  expect_score(clipped.rougeL, 1.0 / 4, 1.0 / 2, 1.0 / 3, "rougeL");
  // Lin (2004) section 3.1: word order matters to ROUGE-2 and ROUGE-L, not to ROUGE-1.
  const auto swapped = rouge("the gunman police killed", "police killed the gunman");
  expect_score(swapped.rouge1, 1, 1, 1, "rouge1");
  expect_score(swapped.rouge2, 2.0 / 3, 2.0 / 3, 2.0 / 3, "rouge2: 'police killed', 'the gunman'");
  expect_score(swapped.rougeL, 0.5, 0.5, 0.5, "rougeL: LCS 2");
}

TEST(Rouge, StemmingMatchesInflections) {
  const auto plain = rouge("police kill the gunman", "police killed the gunman");
  expect_score(plain.rouge1, 0.75, 0.75, 0.75, "no stemming: kill != killed");
  const auto stemmed =
      rouge("police kill the gunman", "police killed the gunman", pyramidion::RougeOptions().use_stemmer(true));
  expect_score(stemmed.rouge1, 1, 1, 1, "stemmed: kill == kill");
  expect_score(stemmed.rougeL, 1, 1, 1, "stemmed rougeL");
}

TEST(Rouge, SummaryLevelLcsIsTheUnionOverSentences) {
  // Lin (2004) section 3.2: r = w1..w5, c1 = w1 w2 w6 w7 w8, c2 = w1 w3 w8 w9 w5; the union LCS
  // is w1 w2 w3 w5: 4 hits, over 10 prediction and 5 reference tokens.
  const auto s = rouge("a b f g h\na c h i e", "a b c d e");
  expect_score(s.rougeLsum, 4.0 / 10, 4.0 / 5, 8.0 / 15, "rougeLsum");
  expect_score(s.rougeL, 4.0 / 10, 4.0 / 5, 8.0 / 15, "rougeL over the joined text: a b ... e");
  // A token is counted at most as often as it occurs on each side: both sentences match the same
  // "a" of the reference sentence, once.
  expect_score(rouge("a\na", "a a").rougeLsum, 0.5, 0.5, 0.5, "no double counting");
  expect_score(rouge("a\n\n\nb", "a b").rougeLsum, 1, 1, 1, "empty lines are not sentences");
}

TEST(Rouge, EmptySidesScoreZero) {
  expect_zero(rouge("", "the cat"));
  expect_zero(rouge("the cat", ""));
  expect_zero(rouge("", ""));
  expect_zero(rouge("?!", "... --"));
  // A single token: no bigram on the prediction side.
  expect_score(rouge("cat", "the cat").rouge2, 0, 0, 0, "rouge2 without a bigram");
}

TEST(RougeCorpus, MeanOfPerDocumentScores) {
  const std::vector<std::string> predictions = {"the cat sat", "a b c", "", "police killed the gunman"};
  const std::vector<std::string> references = {"the cat sat on the mat", "a b c", "x", "the gunman was killed"};
  const auto report = rouge_corpus(predictions, references);
  ASSERT_EQ(report.documents, 4);
  ASSERT_EQ(report.per_document.size(), 4u);
  double f1 = 0, precision = 0, recall = 0;
  for (size_t i = 0; i < predictions.size(); ++i) {
    const auto s = rouge(predictions[i], references[i]);
    EXPECT_DOUBLE_EQ(report.per_document[i].rougeL.f1, s.rougeL.f1);
    f1 += s.rouge2.f1 / 4;
    precision += s.rouge2.precision / 4;
    recall += s.rouge2.recall / 4;
  }
  EXPECT_NEAR(report.rouge2.f1.mid, f1, 1e-12);
  EXPECT_NEAR(report.rouge2.precision.mid, precision, 1e-12);
  EXPECT_NEAR(report.rouge2.recall.mid, recall, 1e-12);
}

TEST(RougeCorpus, BootstrapIntervalContainsTheMeanAndIsReproducible) {
  // Prefixes of 1..6 words of one sentence against the sentence: every measure varies.
  const std::vector<std::string> words = {"the", "quick", "brown", "fox", "jumps", "over"};
  const std::vector<std::string> references(40, "the quick brown fox jumps over the lazy dog");
  std::vector<std::string> predictions;
  for (size_t i = 0; i < references.size(); ++i) {
    std::string prefix;
    for (size_t k = 0; k <= i % words.size(); ++k) prefix += words[k] + " ";
    predictions.push_back(prefix);
  }
  RougeCorpusOptions options;
  options.seed(7);
  const auto a = rouge_corpus(predictions, references, options);
  const auto b = rouge_corpus(predictions, references, options);
  for (const auto* m : {&a.rouge1, &a.rouge2, &a.rougeL, &a.rougeLsum}) {
    EXPECT_LE(m->f1.low, m->f1.mid);
    EXPECT_LE(m->f1.mid, m->f1.high);
    EXPECT_LT(m->f1.low, m->f1.high);  // the documents differ: a real interval
  }
  EXPECT_EQ(a.rouge1.f1.low, b.rouge1.f1.low);
  EXPECT_EQ(a.rougeL.recall.high, b.rougeL.recall.high);
  options.seed(8);
  const auto c = rouge_corpus(predictions, references, options);
  EXPECT_EQ(a.rouge1.f1.mid, c.rouge1.f1.mid);  // the mean does not depend on the seed
  EXPECT_TRUE(a.rouge1.f1.low != c.rouge1.f1.low || a.rouge1.f1.high != c.rouge1.f1.high);
  // A wider confidence level, a wider interval.
  options.seed(7);
  options.confidence(0.5);
  const auto narrow = rouge_corpus(predictions, references, options);
  EXPECT_GE(narrow.rouge1.f1.low, a.rouge1.f1.low);
  EXPECT_LE(narrow.rouge1.f1.high, a.rouge1.f1.high);
}

TEST(RougeCorpus, NoResamplingOrOneDocumentGivesAPointInterval) {
  RougeCorpusOptions options;
  options.bootstrap_samples(0);
  const auto none = rouge_corpus({"a b", "c"}, {"a", "c d"}, options);
  EXPECT_EQ(none.rouge1.f1.low, none.rouge1.f1.mid);
  EXPECT_EQ(none.rouge1.f1.high, none.rouge1.f1.mid);
  const auto one = rouge_corpus({"a b"}, {"a"});
  EXPECT_DOUBLE_EQ(one.rouge1.f1.low, 2.0 / 3);
  EXPECT_DOUBLE_EQ(one.rouge1.f1.high, 2.0 / 3);
}

TEST(RougeCorpus, RejectsBadArguments) {
  EXPECT_NE(error_of<std::invalid_argument>([] { rouge_corpus({"a"}, {"a", "b"}); }).find("1 predictions but 2 references"),
            std::string::npos);
  EXPECT_NE(error_of<std::invalid_argument>([] { rouge_corpus({}, {}); }).find("no documents"), std::string::npos);
  RougeCorpusOptions options;
  options.bootstrap_samples(-1);
  EXPECT_NE(error_of<std::invalid_argument>([&] { rouge_corpus({"a"}, {"a"}, options); }).find("bootstrap_samples = -1"),
            std::string::npos);
  // Too many resamples for memory (std::bad_alloc before the bound): refused, naming the bound.
  options.bootstrap_samples(1000000000000);
  EXPECT_NE(error_of<std::invalid_argument>([&] { rouge_corpus({"a"}, {"a"}, options); })
                .find("bootstrap_samples = 1000000000000 must be in [0, 1000000]"),
            std::string::npos);
  options.bootstrap_samples(RougeCorpusOptions::kMaxBootstrapSamples);
  EXPECT_NO_THROW(options.check());
  options.bootstrap_samples(10);
  for (const double bad : {0.0, 1.0, -0.5, std::numeric_limits<double>::quiet_NaN()}) {
    options.confidence(bad);
    EXPECT_NE(error_of<std::invalid_argument>([&] { rouge_corpus({"a"}, {"a"}, options); }).find("confidence = "),
              std::string::npos)
        << bad;
  }
}

TEST(RougeReport, JsonAndPerDocumentLines) {
  const auto report = rouge_corpus({"the cat sat", "x"}, {"the cat sat on the mat", "y"});
  const std::string json = pyramidion::rouge_report_to_json(report);
  EXPECT_NE(json.find("\"documents\": 2"), std::string::npos) << json;
  EXPECT_NE(json.find("\"rougeLsum\""), std::string::npos) << json;
  const std::string lines = pyramidion::rouge_per_document_to_jsonl(report, {"d1", "d2"});
  EXPECT_EQ(std::count(lines.begin(), lines.end(), '\n'), 2);
  EXPECT_EQ(lines.rfind("{\"id\":\"d1\"", 0), 0u) << lines;
  EXPECT_NE(error_of<std::invalid_argument>([&] { pyramidion::rouge_per_document_to_jsonl(report, {"d1"}); })
                .find("1 ids for 2 documents"),
            std::string::npos);
}

}  // namespace
