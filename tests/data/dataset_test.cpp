// Tests of preprocessed datasets (src/data/preprocess.cpp, src/data/dataset.cpp) and the corpus
// views they are read through: a dataset holds exactly what tokenize_file() gives (ids, tokens,
// counts, errors), whatever the number of workers (byte for byte); it appears whole or not at all;
// and every damaged file is a clear error naming the file, found by Dataset::open or verify().
#include <pyramidion/dataset.h>

#include "support/train_fixtures.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "util/checksum.h"
#include "util/directory_lock.h"
#include "util/mapped_file.h"
#include "util/output_file.h"

namespace {

namespace fs = std::filesystem;
using pyramidion::CorpusOptions;
using pyramidion::Dataset;
using pyramidion::PreprocessOptions;
using pyramidion::TokenizedCorpus;
using pyramidion::Tokenizer;
using pyramidion_test::error_of;
using pyramidion_test::read_text;

const Tokenizer& tokenizer() { return pyramidion_test::small_tokenizer(); }

void expect_same_corpus(const TokenizedCorpus& a, const TokenizedCorpus& b) {
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(a.source_tokens(), b.source_tokens());
  EXPECT_EQ(a.target_tokens(), b.target_tokens());
  for (int64_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a.id(i), b.id(i));
    EXPECT_EQ(a.source(i), b.source(i)) << i;
    EXPECT_EQ(a.target(i), b.target(i)) << i;
  }
}

std::string write_lines(const fs::path& path, const std::vector<std::string>& lines) {
  std::ofstream out(path);
  for (const auto& l : lines) out << l << '\n';
  return path.string();
}

std::string bytes_of(const fs::path& path) { return pyramidion::detail::read_file("test", path.string()); }

// ---- TokenizedCorpus views -------------------------------------------------------------------------

TEST(TokenizedCorpus, ViewsCutAndLimitWithoutCopyingAndAreReadOnly) {
  TokenizedCorpus c;
  c.add("a", {1, 2, 3, 4, 5}, {6, 7, 8});
  c.add("b", {9}, {10, 11});
  const auto cut = c.truncated(2, 1);
  EXPECT_EQ(cut.source(0), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(cut.target(0), (std::vector<int64_t>{6}));
  EXPECT_EQ(cut.source(1), (std::vector<int64_t>{9}));
  EXPECT_EQ(cut.source_tokens(), 3);
  EXPECT_EQ(cut.target_tokens(), 2);
  EXPECT_EQ(cut.truncated(3, 0).source_length(0), 2) << "limits only tighten";
  EXPECT_EQ(c.first(1).size(), 1);
  EXPECT_EQ(c.first(1).source_tokens(), 5);
  EXPECT_EQ(c.first(9).size(), 2);
  EXPECT_THROW(cut.source(2), std::out_of_range);
  EXPECT_THROW(c.id(-1), std::out_of_range);
  auto view = cut;
  EXPECT_THROW(view.add("c", {1}, {1}), std::logic_error);
  EXPECT_THROW(c.truncated(-1, 0), std::invalid_argument);
  // A copy shares the tokens until one of them adds: then only that one changes.
  TokenizedCorpus copy = c;
  copy.add("c", {12}, {13});
  EXPECT_EQ(copy.size(), 3);
  EXPECT_EQ(c.size(), 2);
  EXPECT_EQ(cut.source(0), (std::vector<int64_t>{1, 2})) << "views of the original are unchanged";
}

// ---- preprocess ------------------------------------------------------------------------------------

TEST(Preprocess, HoldsWhatTokenizeFileGivesFullLengthOrCut) {
  const auto dir = pyramidion_test::fresh_dir("dataset_same");
  const auto train = pyramidion_test::data_slice(dir, "train", 12);
  const auto valid = pyramidion_test::data_slice(dir, "valid", 5);
  const auto result = pyramidion::preprocess({{"train", train}, {"valid", valid}}, tokenizer(),
                                             (dir / "full").string(), PreprocessOptions().workers(2));
  const auto data = Dataset::open((dir / "full").string());
  EXPECT_EQ(data.splits(), (std::vector<std::string>{"train", "valid"}));
  EXPECT_EQ(pyramidion::tokenizer_checksum(data.tokenizer()), pyramidion::tokenizer_checksum(tokenizer()));
  pyramidion::CorpusStats stats;
  const auto json_train = pyramidion::tokenize_file(train, tokenizer(), {}, &stats);
  expect_same_corpus(data.split("train"), json_train);
  EXPECT_TRUE(data.split("train").mapped());
  expect_same_corpus(data.split("valid"), pyramidion::tokenize_file(valid, tokenizer()));
  EXPECT_EQ(result.splits.at("train").documents, 12);
  EXPECT_EQ(data.stats("train").source_tokens, json_train.source_tokens());
  // Cut at training time (the index only) = cut when tokenizing = cut at preprocessing.
  const auto cut = CorpusOptions().max_source_length(64).max_target_length(31);
  const auto json_cut = pyramidion::tokenize_file(train, tokenizer(), cut, &stats);
  expect_same_corpus(data.split("train").truncated(64, 31), json_cut);
  pyramidion::preprocess({{"train", train}}, tokenizer(), (dir / "cut").string(),
                         PreprocessOptions().max_source_length(64).max_target_length(31));
  const auto cut_data = Dataset::open((dir / "cut").string());
  expect_same_corpus(cut_data.split("train"), json_cut);
  EXPECT_EQ(cut_data.stats("train").truncated_sources, stats.truncated_sources);
  EXPECT_EQ(cut_data.stats("train").truncated_targets, stats.truncated_targets);
  EXPECT_EQ(cut_data.max_source_length(), 64);
  EXPECT_NE(error_of<std::invalid_argument>([&] { data.split("test"); }).find("has no split 'test' (it has: train, valid)"),
            std::string::npos);
}

TEST(Preprocess, OneTwoAndThreeWorkersWriteTheSameBytes) {
  const auto dir = pyramidion_test::fresh_dir("dataset_workers");
  const auto train = pyramidion_test::data_slice(dir, "train", 30);
  std::vector<std::string> names;
  for (int workers : {1, 2, 3}) {
    const auto out = dir / ("w" + std::to_string(workers));
    pyramidion::preprocess({{"train", train}}, tokenizer(), out.string(), PreprocessOptions().workers(workers));
    names.clear();
    for (const auto& e : fs::directory_iterator(out)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    EXPECT_EQ(names, (std::vector<std::string>{"manifest.json", "tokenizer.model", "train.ids", "train.index",
                                               "train.source", "train.target"}));
    if (workers == 1) continue;
    for (const auto& name : names) EXPECT_EQ(bytes_of(out / name), bytes_of(dir / "w1" / name)) << name << ", " << workers;
  }
  EXPECT_EQ(fs::file_size(dir / "w1" / "train.source"), 2 * static_cast<uintmax_t>(Dataset::open((dir / "w1").string())
                                                                                        .stats("train")
                                                                                        .source_tokens))
      << "a 300-piece vocabulary is stored in 2-byte tokens";
}

TEST(Preprocess, BadRecordsFailAsTokenizeFileDoesOrAreSkippedAndCounted) {
  const auto dir = pyramidion_test::fresh_dir("dataset_bad");
  const auto good = pyramidion::read_all(pyramidion_test::data_slice(dir, "valid", 3));
  std::vector<std::string> lines;
  for (int i = 0; i < 150; ++i) {  // past the first chunks, so that the bad records sit in later ones
    lines.push_back(R"({"id": "d)" + std::to_string(i) + R"(", "document": "word )" + std::to_string(i) +
                    R"( and more words", "summary": "a summary"})");
  }
  lines[100] = R"({"id": "bad", "document": "text"})";  // no summary
  lines[130] = "{not json";
  const auto path = write_lines(dir / "bad.jsonl", lines);
  const auto expected = error_of<std::invalid_argument>([&] { pyramidion::tokenize_file(path, tokenizer()); });
  EXPECT_NE(expected.find(path + ":101: "), std::string::npos) << expected;
  for (int workers : {1, 3}) {
    const auto out = dir / ("fail" + std::to_string(workers));
    const auto message = error_of<std::invalid_argument>(
        [&] { pyramidion::preprocess({{"train", path}}, tokenizer(), out.string(), PreprocessOptions().workers(workers)); });
    EXPECT_EQ(message, expected) << "the first bad record in file order, whatever the workers";
    EXPECT_FALSE(fs::exists(out)) << "a failed preprocess leaves no dataset";
    for (const auto& e : fs::directory_iterator(dir))
      EXPECT_FALSE(pyramidion::detail::is_temporary_name(e.path().filename().string())) << e.path();
  }
  const auto skip = pyramidion::ReaderOptions().skip_bad(true);
  pyramidion::CorpusStats stats;
  const auto json = pyramidion::tokenize_file(path, tokenizer(), CorpusOptions().reader(skip), &stats);
  const auto result = pyramidion::preprocess({{"train", path}}, tokenizer(), (dir / "skip").string(),
                                             PreprocessOptions().reader(skip).workers(2));
  expect_same_corpus(Dataset::open((dir / "skip").string()).split("train"), json);
  EXPECT_EQ(result.splits.at("train").skipped, 2);
  EXPECT_EQ(stats.skipped, 2);
  ASSERT_EQ(result.splits.at("train").skip_reasons.size(), 2u);
  EXPECT_NE(result.splits.at("train").skip_reasons[1].find(path + ":131: invalid JSON"), std::string::npos);
  (void)good;
}

TEST(Preprocess, RefusesBadOptionsAndAnExistingDatasetUnlessOverwriting) {
  const auto dir = pyramidion_test::fresh_dir("dataset_options");
  const auto train = pyramidion_test::data_slice(dir, "train", 3);
  const auto out = (dir / "d").string();
  const auto refused = [&](std::vector<std::pair<std::string, std::string>> splits, PreprocessOptions o) {
    return error_of<std::invalid_argument>([&] { pyramidion::preprocess(splits, tokenizer(), out, o); });
  };
  EXPECT_NE(refused({}, {}).find("no split"), std::string::npos);
  EXPECT_NE(refused({{"tr ain", train}}, {}).find("split name 'tr ain'"), std::string::npos);
  EXPECT_NE(refused({{"train", train}, {"train", train}}, {}).find("given twice"), std::string::npos);
  EXPECT_NE(refused({{"train", train}}, PreprocessOptions().workers(-1)).find("workers = -1 is out of range"), std::string::npos);
  EXPECT_NE(refused({{"train", train}}, PreprocessOptions().workers(100000)).find("workers = 100000 is out of range"),
            std::string::npos);
  // --overwrite replaces a dataset, never a file (an input given as --out by mistake).
  const auto before = pyramidion_test::read_text(train);
  EXPECT_NE(error_of<std::invalid_argument>([&] {
              pyramidion::preprocess({{"train", train}}, tokenizer(), train, PreprocessOptions().overwrite(true));
            }).find("is a file, not a dataset directory"),
            std::string::npos);
  EXPECT_EQ(pyramidion_test::read_text(train), before);
  EXPECT_NE(refused({{"train", train}}, PreprocessOptions().max_source_length(-5)).find("got -5"), std::string::npos);
  EXPECT_THROW(pyramidion::preprocess({{"train", (dir / "missing.jsonl").string()}}, tokenizer(), out),
               std::runtime_error);
  EXPECT_FALSE(fs::exists(out));
  pyramidion::preprocess({{"train", train}}, tokenizer(), out);
  EXPECT_NE(refused({{"train", train}}, {}).find("already exists; remove it or set overwrite"), std::string::npos);
  const auto small = pyramidion_test::data_slice(dir, "valid", 2);
  pyramidion::preprocess({{"valid", small}}, tokenizer(), out, PreprocessOptions().overwrite(true));
  EXPECT_EQ(Dataset::open(out).splits(), (std::vector<std::string>{"valid"})) << "replaced";
}

TEST(Preprocess, AKilledRunLeavesNoDatasetAndTheNextRunCleansUp) {
  const auto dir = pyramidion_test::fresh_dir("dataset_killed");
  const auto train = pyramidion_test::data_slice(dir, "train", 12);
  const auto out = (dir / "d").string();
  pyramidion_test::killed_while([&] {
    pyramidion::preprocess({{"train", train}}, tokenizer(), out,
                           PreprocessOptions().workers(1).progress([](const pyramidion::PreprocessProgress& p) {
                             if (p.documents > 0) pyramidion_test::die();  // in the middle of the split
                           }));
    pyramidion_test::die();  // (a split too fast for a progress call: killed at the end)
  });
  EXPECT_FALSE(fs::exists(out)) << "no directory that could load as a dataset";
  int temporaries = 0;
  for (const auto& e : fs::directory_iterator(dir)) temporaries += pyramidion::detail::is_temporary_name(e.path().filename().string());
  EXPECT_EQ(temporaries, 1) << "the killed run's temporary";
  pyramidion::preprocess({{"train", train}}, tokenizer(), out);
  temporaries = 0;
  for (const auto& e : fs::directory_iterator(dir)) temporaries += pyramidion::detail::is_temporary_name(e.path().filename().string());
  EXPECT_EQ(temporaries, 0) << "removed by the next run";
  EXPECT_EQ(Dataset::open(out).split("train").size(), 12);
}

// Two runs into one --out: the second used to delete the first's unfinished work (its temporary
// directory) and race it to the rename. Now it is refused, naming the holder, and touches nothing.
TEST(Preprocess, ASecondRunIntoTheSameOutputIsRefusedAndTheFirstsWorkKept) {
  const auto dir = pyramidion_test::fresh_dir("dataset_lock");
  const auto train = pyramidion_test::data_slice(dir, "train", 3);
  const auto out = (dir / "d").string();
  {
    const auto first = pyramidion::detail::DirectoryLock::beside("preprocess", out);  // a run at work
    fs::create_directories(dir / ".d.tmp-Ab12Cd");                                       // its unfinished dataset
    const auto message = error_of<std::runtime_error>([&] { pyramidion::preprocess({{"train", train}}, tokenizer(), out); });
    EXPECT_NE(message.find("preprocess: '" + out + "' is in use by another process (pid " + std::to_string(::getpid())),
              std::string::npos)
        << message;
    EXPECT_TRUE(fs::is_directory(dir / ".d.tmp-Ab12Cd")) << "the first run's work was deleted";
    EXPECT_FALSE(fs::exists(out));
  }
  pyramidion::preprocess({{"train", train}}, tokenizer(), out);  // once the first is done
  EXPECT_EQ(Dataset::open(out).split("train").size(), 3);
}

// A split with no usable record (an empty file, or every record bad with skip_bad) used to make a
// dataset that training refused later (train) or that silently turned validation off (valid).
TEST(Preprocess, ASplitWithoutAUsableRecordIsRefusedNamingIt) {
  const auto dir = pyramidion_test::fresh_dir("dataset_empty_split");
  const auto train = pyramidion_test::data_slice(dir, "train", 3);
  const auto empty = write_lines(dir / "empty.jsonl", {});
  const auto bad = write_lines(dir / "bad.jsonl", {"{not json", R"({"id": "x", "document": "text"})"});
  const auto out = (dir / "d").string();
  auto message = error_of<std::invalid_argument>(
      [&] { pyramidion::preprocess({{"train", train}, {"valid", empty}}, tokenizer(), out); });
  EXPECT_NE(message.find("split 'valid' ('" + empty + "') holds no usable record (0 skipped)"), std::string::npos)
      << message;
  message = error_of<std::invalid_argument>([&] {
    pyramidion::preprocess({{"train", bad}}, tokenizer(), out,
                           PreprocessOptions().reader(pyramidion::ReaderOptions().skip_bad(true)));
  });
  EXPECT_NE(message.find("split 'train' ('" + bad + "') holds no usable record (2 skipped; " + bad + ":1: invalid JSON"),
            std::string::npos)
      << message;
  EXPECT_FALSE(fs::exists(out));
}

// ---- damaged datasets ------------------------------------------------------------------------------

class DamagedDataset : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = pyramidion_test::fresh_dir(std::string("dataset_damaged_") +
                                      ::testing::UnitTest::GetInstance()->current_test_info()->name());
    pyramidion::preprocess({{"train", pyramidion_test::data_slice(dir_, "train", 6)}}, tokenizer(), data().string());
  }
  fs::path data() const { return dir_ / "d"; }
  std::string open_error() const {
    return error_of<std::runtime_error>([&] { Dataset::open(data().string()); });
  }
  // Rewrites a file and records its new size and checksum in the manifest, so that only the
  // check under test can catch it.
  void replace_consistently(const std::string& name, const std::string& bytes) {
    pyramidion::detail::write_output_file("test", (data() / name).string(), bytes);
    std::string manifest = bytes_of(data() / "manifest.json");
    const auto entry = manifest.find("\"" + name + "\"");
    const auto set = [&](const std::string& key, const std::string& value, bool quoted) {
      const auto at = manifest.find("\"" + key + "\": ", entry) + key.size() + 4;
      const auto end = manifest.find_first_of(",\n", at);
      manifest.replace(at, end - at, quoted ? "\"" + value + "\"" : value);
    };
    pyramidion::detail::Checksum sum;
    sum.update(bytes);
    set("bytes", std::to_string(bytes.size()), false);
    set("checksum", sum.hex(), true);
    pyramidion::detail::write_output_file("test", (data() / "manifest.json").string(), manifest);
  }
  fs::path dir_;
};

TEST_F(DamagedDataset, NoManifestIsNotADataset) {
  fs::remove(data() / "manifest.json");
  EXPECT_NE(open_error().find("'" + data().string() + "' is not a complete dataset: it has no manifest.json"),
            std::string::npos);
  EXPECT_NE(error_of<std::runtime_error>([&] { Dataset::open((dir_ / "nowhere").string()); }).find("is not a directory"),
            std::string::npos);
}

TEST_F(DamagedDataset, AManifestThatDoesNotMatchItsFiles) {
  std::string manifest = bytes_of(data() / "manifest.json");
  manifest.replace(manifest.find("\"version\": 1"), 12, "\"version\": 7");
  pyramidion::detail::write_output_file("test", (data() / "manifest.json").string(), manifest);
  EXPECT_NE(open_error().find("has format version 7; this pyramidion reads 1"), std::string::npos);
  pyramidion::detail::write_output_file("test", (data() / "manifest.json").string(), "{\"format\": ");
  EXPECT_NE(open_error().find("manifest.json' is not valid JSON"), std::string::npos);
  // A number no double holds is invalid JSON too, not nlohmann's out_of_range escaping.
  pyramidion::detail::write_output_file("test", (data() / "manifest.json").string(), "{\"format\": 1e999}");
  EXPECT_NE(open_error().find("manifest.json' is not valid JSON: "), std::string::npos) << open_error();
  // Counts that no index can have: refused, not read through.
  manifest.replace(manifest.find("\"version\": 7"), 12, "\"version\": 1");
  for (const std::string& count : {"-1", "1099511627777"}) {
    std::string bad = manifest;
    bad.replace(bad.find("\"documents\": 6"), 14, "\"documents\": " + count);
    pyramidion::detail::write_output_file("test", (data() / "manifest.json").string(), bad);
    EXPECT_NE(open_error().find(count == "-1" ? "has a negative count (-1)" : "claims 1099511627777 documents"),
              std::string::npos)
        << open_error();
  }
}

TEST_F(DamagedDataset, ATruncatedTokenFile) {
  const auto path = data() / "train.source";
  const std::string whole = bytes_of(path);
  fs::resize_file(path, fs::file_size(path) - 2);
  EXPECT_NE(open_error().find("'" + path.string() + "' has "), std::string::npos);
  EXPECT_NE(open_error().find("the manifest says " + std::to_string(fs::file_size(path) + 2) +
                              ": it was truncated or replaced"),
            std::string::npos);
  pyramidion::detail::write_output_file("test", path.string(), whole);
  EXPECT_NO_THROW(Dataset::open(data().string()));
  fs::remove(data() / "train.target");
  EXPECT_NE(open_error().find("train.target' is missing"), std::string::npos);
}

// A token file truncated while a corpus maps it (`truncate -s 0` under a running job) used to kill
// the reader with SIGBUS; reading it now throws FileChanged naming the file.
TEST_F(DamagedDataset, ATokenFileTruncatedWhileInUseIsAnErrorNamingIt) {
  const auto dataset = Dataset::open(data().string());
  const auto corpus = dataset.split("train");
  const int64_t last = corpus.size() - 1;
  EXPECT_FALSE(corpus.source(last).empty());
  fs::resize_file(data() / "train.source", 0);
  const auto message = error_of<pyramidion::detail::FileChanged>([&] { corpus.source(last); });
  EXPECT_NE(message.find("'" + (data() / "train.source").string() + "' changed while it was in use"), std::string::npos)
      << message;
}

TEST_F(DamagedDataset, AChangedIndexOrIdFileAndAChangedTokenFoundByVerify) {
  std::string ids = bytes_of(data() / "train.ids");
  ids[0] = static_cast<char>(ids[0] ^ 1);
  pyramidion::detail::write_output_file("test", (data() / "train.ids").string(), ids);
  EXPECT_NE(open_error().find("train.ids' does not match its checksum in the manifest"), std::string::npos);
  ids[0] = static_cast<char>(ids[0] ^ 1);
  pyramidion::detail::write_output_file("test", (data() / "train.ids").string(), ids);
  // A changed token keeps the size: open() does not read the tokens; verify() does.
  std::string tokens = bytes_of(data() / "train.source");
  tokens[100] = static_cast<char>(tokens[100] ^ 1);
  pyramidion::detail::write_output_file("test", (data() / "train.source").string(), tokens);
  const auto opened = Dataset::open(data().string());
  EXPECT_NE(error_of<std::runtime_error>([&] { opened.verify(); }).find("train.source' does not match its checksum"),
            std::string::npos);
}

TEST_F(DamagedDataset, AnIndexPointingPastTheEnd) {
  std::string index = bytes_of(data() / "train.index");
  int64_t offsets[7];
  std::memcpy(offsets, index.data(), sizeof offsets);  // source offsets of the 6 documents
  offsets[3] = offsets[6] + 1000;
  std::memcpy(index.data(), offsets, sizeof offsets);
  replace_consistently("train.index", index);
  const auto message = open_error();
  EXPECT_NE(message.find("train.index' points past the end of '" + (data() / "train.source").string() +
                         "': document 2's source is ["),
            std::string::npos)
      << message;
  // An index for another number of documents.
  replace_consistently("train.index", index.substr(0, index.size() - 8));
  EXPECT_NE(open_error().find("6 documents need 168"), std::string::npos) << open_error();
}

TEST_F(DamagedDataset, AnotherTokenizer) {
  const auto dir = pyramidion_test::fresh_dir("dataset_other_tokenizer");
  const auto other = pyramidion::train_tokenizer_on_file(pyramidion_test::data_slice(dir, "valid", 6),
                                                         pyramidion::TokenizerTrainOptions().vocab_size(300));
  other.save((data() / "tokenizer.model").string());
  EXPECT_NE(open_error().find("tokenizer.model' is not the tokenizer the dataset was made with"), std::string::npos);
}

// ---- tokenizer training on a sample ----------------------------------------------------------------

TEST(TrainTokenizerOnFile, ASmallFileIsReadWholeAndALargeOneAcrossItsLength) {
  const auto dir = pyramidion_test::fresh_dir("tokenizer_sample");
  const auto path = pyramidion_test::data_slice(dir, "train", 6);
  std::vector<std::string> texts;
  for (auto& d : pyramidion::read_all(path)) {
    texts.push_back(d.document);
    texts.push_back(d.summary);
  }
  const auto options = pyramidion::TokenizerTrainOptions().vocab_size(300);
  EXPECT_EQ(pyramidion::train_tokenizer_on_file(path, options).serialized(),
            Tokenizer::train(texts, options).serialized())
      << "a file under the budget: every document, in order";
  // 400 records; only the last quarter holds the letter "ж". A prefix of the budget would never
  // see it; a sample spread over the file must.
  std::vector<std::string> lines;
  std::mt19937 rng(5);
  for (int i = 0; i < 400; ++i) {
    std::string text;
    for (int k = 0; k < 30; ++k) {
      for (int c = 0; c < 3 + static_cast<int>(rng() % 5); ++c) text += static_cast<char>('a' + rng() % 26);
      text += i < 300 ? " " : "жж ";
    }
    lines.push_back(R"({"id": ")" + std::to_string(i) + R"(", "document": ")" + text + R"(", "summary": "s )" +
                    std::to_string(i % 10) + R"("})");
  }
  const auto big = write_lines(dir / "big.jsonl", lines);
  const auto sampled = pyramidion::train_tokenizer_on_file(
      big, pyramidion::TokenizerTrainOptions().vocab_size(60).character_coverage(1.0),
      pyramidion::TokenizerSampleOptions().max_text_bytes(20000).segments(16));
  const auto has_unk = [](const Tokenizer& t, const std::string& text) {
    const auto ids = t.encode(text);
    return std::find(ids.begin(), ids.end(), t.unk_id()) != ids.end();
  };
  EXPECT_FALSE(has_unk(sampled, "жжж")) << "the sample reached the end of the file";
  const auto prefix = pyramidion::train_tokenizer_on_file(
      big, pyramidion::TokenizerTrainOptions().vocab_size(60).character_coverage(1.0),
      pyramidion::TokenizerSampleOptions().max_text_bytes(20000).segments(1));
  EXPECT_TRUE(has_unk(prefix, "жжж")) << "one segment: the file's start only (the test can fail)";
  EXPECT_THROW(pyramidion::train_tokenizer_on_file(big, options, pyramidion::TokenizerSampleOptions().segments(0)),
               std::invalid_argument);
}

}  // namespace
