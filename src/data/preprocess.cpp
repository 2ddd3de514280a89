// preprocess() (see include/pyramidion/dataset.h): JSON lines in, a dataset directory out.
//
// Per split, the calling thread reads the file's lines in chunks and writes the results in file
// order; `workers` threads parse and tokenize the chunks (util/ordered_pipeline.h). A chunk's
// result holds its examples' tokens, ids, counts and, without skip_bad, the first error in it,
// which the writer raises when it reaches that chunk: the error and the output are those of one
// thread reading the file from the start, whatever the number of workers.
#include <pyramidion/dataset.h>
#include <pyramidion/threads.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <future>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "data/dataset_format.h"
#include "data/tokenize_example.h"
#include "util/directory_lock.h"
#include "util/output_file.h"
#include "util/checksum.h"
#include "util/ordered_pipeline.h"

namespace pyramidion {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

constexpr size_t kChunkLines = 64;           // lines per chunk of work
constexpr size_t kChunkBytes = size_t{4} << 20;  // or fewer, when the lines are long
constexpr size_t kWriteBuffer = size_t{4} << 20;

struct Chunk {
  std::vector<std::pair<int64_t, std::string>> lines;  // (line number, text)
};

struct ChunkResult {
  std::vector<std::string> ids;
  std::vector<int32_t> source, target;            // the examples' tokens, back to back
  std::vector<int64_t> source_lengths, target_lengths;
  CorpusStats counts;                             // skipped, truncated
  std::vector<std::string> skip_reasons;
  std::string error;                              // without skip_bad: the chunk's first bad record
};

ChunkResult tokenize_chunk(const Chunk& chunk, const std::string& path, const Tokenizer& tokenizer,
                           const PreprocessOptions& options) {
  ChunkResult out;
  const detail::ExampleLimits limits{options.max_source_length(), options.max_target_length(), true};
  std::vector<int64_t> source, target;
  for (const auto& [number, text] : chunk.lines) {
    std::string problem;
    Document doc;
    try {
      doc = parse_record(text, options.reader());
      doc.path = path;
      doc.line = number;
      problem = detail::tokenize_example(doc, tokenizer, limits, source, target, out.counts);
    } catch (const std::invalid_argument& e) {  // a malformed record
      problem = path + ":" + std::to_string(number) + ": " + e.what();
    }
    if (!problem.empty()) {
      if (!options.reader().skip_bad()) {
        out.error = std::move(problem);
        return out;
      }
      ++out.counts.skipped;
      out.skip_reasons.push_back(std::move(problem));
      continue;
    }
    out.ids.push_back(std::move(doc.id));
    out.source.insert(out.source.end(), source.begin(), source.end());
    out.target.insert(out.target.end(), target.begin(), target.end());
    out.source_lengths.push_back(static_cast<int64_t>(source.size()));
    out.target_lengths.push_back(static_cast<int64_t>(target.size()));
  }
  return out;
}

/// A file of the dataset streamed through a buffer, with its checksum.
class StreamedFile {
 public:
  StreamedFile(const std::string& staging, const std::string& name)
      : name_(name), file_("preprocess", (fs::path(staging) / name).string()) {
    buffer_.reserve(kWriteBuffer);
  }
  void write(const void* data, size_t size) {
    checksum_.update(data, size);
    bytes_ += static_cast<int64_t>(size);
    const auto* p = static_cast<const char*>(data);
    buffer_.insert(buffer_.end(), p, p + size);
    if (buffer_.size() >= kWriteBuffer) drain();
  }
  /// Tokens as `token_bytes`-byte little-endian integers.
  void write_tokens(const std::vector<int32_t>& tokens, int token_bytes) {
    if (token_bytes == 4) {
      write(tokens.data(), tokens.size() * 4);
      return;
    }
    std::vector<uint16_t> narrow(tokens.begin(), tokens.end());  // ids < vocab_size <= 65536
    write(narrow.data(), narrow.size() * 2);
  }
  /// Publishes the file inside the staging directory; its manifest entry.
  json commit() {
    drain();
    file_.commit();
    return {{"bytes", bytes_}, {"checksum", checksum_.hex()}};
  }
  const std::string& name() const { return name_; }

 private:
  void drain() {
    file_.write(std::string_view(buffer_.data(), buffer_.size()));
    buffer_.clear();
  }
  std::string name_;
  detail::OutputFile file_;
  std::vector<char> buffer_;
  detail::Checksum checksum_;
  int64_t bytes_ = 0;
};

/// Writes one split's files from the chunk results, in order.
class SplitWriter {
 public:
  SplitWriter(const std::string& staging, const std::string& split, int token_bytes)
      : token_bytes_(token_bytes),
        source_(staging, detail::split_file(split, detail::kSourceKind)),
        target_(staging, detail::split_file(split, detail::kTargetKind)),
        index_(staging, detail::split_file(split, detail::kIndexKind)),
        ids_(staging, detail::split_file(split, detail::kIdsKind)) {}

  void add(ChunkResult& r) {
    if (!r.error.empty()) throw std::invalid_argument(r.error);
    source_.write_tokens(r.source, token_bytes_);
    target_.write_tokens(r.target, token_bytes_);
    for (size_t i = 0; i < r.ids.size(); ++i) {
      source_offsets_.push_back(source_offsets_.back() + r.source_lengths[i]);
      target_offsets_.push_back(target_offsets_.back() + r.target_lengths[i]);
      ids_.write(r.ids[i].data(), r.ids[i].size());
      id_offsets_.push_back(id_offsets_.back() + static_cast<int64_t>(r.ids[i].size()));
    }
    stats_.documents += static_cast<int64_t>(r.ids.size());
    stats_.skipped += r.counts.skipped;
    stats_.truncated_sources += r.counts.truncated_sources;
    stats_.truncated_targets += r.counts.truncated_targets;
    for (auto& reason : r.skip_reasons)
      if (stats_.skip_reasons.size() < DocumentReader::kMaxSkipReasons) stats_.skip_reasons.push_back(std::move(reason));
  }

  /// Publishes the split's files; their manifest entries.
  json commit() {
    stats_.source_tokens = source_offsets_.back();
    stats_.target_tokens = target_offsets_.back();
    for (const auto* offsets : {&source_offsets_, &target_offsets_, &id_offsets_})
      index_.write(offsets->data(), offsets->size() * sizeof(int64_t));
    json files = json::object();
    for (StreamedFile* f : {&source_, &target_, &index_, &ids_}) files[f->name()] = f->commit();
    return files;
  }
  const SplitStats& stats() const { return stats_; }

 private:
  int token_bytes_;
  StreamedFile source_, target_, index_, ids_;
  std::vector<int64_t> source_offsets_{0}, target_offsets_{0}, id_offsets_{0};
  SplitStats stats_;
};

void check_options(const std::vector<std::pair<std::string, std::string>>& splits, const PreprocessOptions& options) {
  if (splits.empty()) throw std::invalid_argument("preprocess: no split to preprocess");
  std::set<std::string> names;
  for (const auto& [name, path] : splits) {
    const bool valid = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    });
    if (!valid) throw std::invalid_argument("preprocess: split name '" + name + "' is not [A-Za-z0-9_-]+");
    if (!names.insert(name).second) throw std::invalid_argument("preprocess: split '" + name + "' is given twice");
    if (path == "-") throw std::invalid_argument("preprocess: split '" + name + "' must be a file, not standard input");
  }
  if (options.max_source_length() < 0 || options.max_target_length() < 0)
    throw std::invalid_argument("preprocess: max_source_length and max_target_length must be >= 0 (0 = full "
                                "length), got " + std::to_string(options.max_source_length()) + " and " +
                                std::to_string(options.max_target_length()));
  check_threads(options.workers(), "preprocess: workers");
}

json stats_json(const SplitStats& s) {
  return {{"documents", s.documents},
          {"skipped", s.skipped},
          {"truncated_sources", s.truncated_sources},
          {"truncated_targets", s.truncated_targets},
          {"source_tokens", s.source_tokens},
          {"target_tokens", s.target_tokens},
          {"skip_reasons", s.skip_reasons}};
}

}  // namespace

PreprocessResult preprocess(const std::vector<std::pair<std::string, std::string>>& splits, const Tokenizer& tokenizer,
                            const std::string& out, const PreprocessOptions& options) {
  check_options(splits, options);
  const auto started = Clock::now();
  std::error_code ec;
  // One run per dataset: a second one would delete the first's unfinished work (its temporaries)
  // and race it to the rename. The lock sits beside `out`, which the rename replaces.
  const auto lock = detail::DirectoryLock::beside("preprocess", out);
  if (fs::exists(out, ec) && !options.overwrite())
    throw std::invalid_argument("preprocess: '" + out + "' already exists; remove it or set overwrite (--overwrite)");
  if (fs::exists(out, ec) && !fs::is_directory(out, ec))  // overwrite replaces a dataset, never a file
    throw std::invalid_argument("preprocess: '" + out + "' is a file, not a dataset directory; choose another --out");
  detail::remove_temporaries_of(out);  // what a killed run left
  const int64_t workers =
      options.workers() > 0 ? options.workers() : std::max<int64_t>(1, std::thread::hardware_concurrency());
  const int token_bytes = detail::token_bytes_for(tokenizer.vocab_size());

  detail::AtomicDirectory dir("preprocess", out);
  const std::string model = tokenizer.serialized();
  dir.write(detail::kDatasetTokenizerFile, model);
  json manifest = {{"format", detail::kDatasetFormat},
                   {"version", detail::kDatasetVersion},
                   {"checksum", detail::kDatasetChecksum},
                   {"token_bytes", token_bytes},
                   {"tokenizer",
                    {{"file", detail::kDatasetTokenizerFile},
                     {"checksum", tokenizer_checksum(tokenizer)},
                     {"vocab_size", tokenizer.vocab_size()}}},
                   {"max_source_length", options.max_source_length()},
                   {"max_target_length", options.max_target_length()},
                   {"reader", {{"format", to_string(options.reader().format())}, {"skip_bad", options.reader().skip_bad()}}},
                   {"splits", json::object()}};
  PreprocessResult result;
  for (const auto& [name, path] : splits) {
    const auto split_start = Clock::now();
    DocumentReader reader(path, options.reader());
    const int64_t total = static_cast<int64_t>(fs::file_size(path, ec));
    // The source file's checksum, on its own thread while the workers tokenize.
    auto source_sum = std::async(std::launch::async, [p = path] { return detail::checksum_file("preprocess", p); });
    SplitWriter writer(dir.staging_path(), name, token_bytes);
    auto last_report = split_start;
    const auto report = [&, split = name] {
      if (!options.progress()) return;
      PreprocessProgress p;
      p.split = split;
      p.documents = writer.stats().documents;
      p.bytes_read = reader.position().byte_offset;
      p.bytes_total = total;
      p.seconds = std::chrono::duration<double>(Clock::now() - split_start).count();
      options.progress()(p);
    };
    detail::run_ordered<Chunk, ChunkResult>(
        workers, 4 * workers,
        [&](Chunk& chunk) {
          std::string line;
          size_t bytes = 0;
          while (chunk.lines.size() < kChunkLines && bytes < kChunkBytes && reader.next_line(line)) {
            bytes += line.size();
            chunk.lines.emplace_back(reader.position().line, std::move(line));
          }
          return !chunk.lines.empty();
        },
        [&, p = path](const Chunk& chunk) { return tokenize_chunk(chunk, p, tokenizer, options); },
        [&](ChunkResult& r) {
          writer.add(r);
          if (Clock::now() - last_report >= std::chrono::seconds(1)) {
            last_report = Clock::now();
            report();
          }
        });
    json files = writer.commit();
    const detail::FileChecksum source = source_sum.get();
    SplitStats stats = writer.stats();
    // A split without an example would be refused by training later (train) or silently turn its
    // use off (valid): refused now, naming it, and nothing is published.
    if (stats.documents == 0) {
      std::string reasons;
      for (size_t i = 0; i < stats.skip_reasons.size() && i < 3; ++i) reasons += "; " + stats.skip_reasons[i];
      throw std::invalid_argument("preprocess: split '" + name + "' ('" + path + "') holds no usable record (" +
                                  std::to_string(stats.skipped) + " skipped" + reasons + "); '" + out +
                                  "' not written");
    }
    json entry = stats_json(stats);
    entry["source_file"] = {{"path", fs::absolute(path, ec).string()}, {"bytes", source.bytes}, {"checksum", source.checksum}};
    entry["files"] = files;
    for (const auto& [file, info] : files.items()) result.bytes_written += info.at("bytes").get<int64_t>();
    manifest["splits"][name] = entry;
    result.bytes_read += source.bytes;
    result.splits[name] = std::move(stats);
    report();
  }
  const std::string manifest_text = manifest.dump(2) + "\n";
  dir.write(detail::kManifestFile, manifest_text);
  result.bytes_written += static_cast<int64_t>(model.size() + manifest_text.size());
  dir.commit();
  result.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  return result;
}

}  // namespace pyramidion
