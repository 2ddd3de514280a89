// pyramidion-summarize: summaries of many documents with a trained checkpoint (a thin shell over
// pyramidion::Summarizer, include/pyramidion/summarizer.h), optionally with the highlight page
// (include/pyramidion/highlight.h).
//
//   pyramidion-summarize --checkpoint runs/tiny/latest --input data/aclsum/test.jsonl --output out.jsonl
//   cat paper.txt | pyramidion-summarize --checkpoint ... --input - --format text --output -
#include <pyramidion/data.h>
#include <pyramidion/highlight.h>
#include <pyramidion/summarizer.h>

#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

struct Input {
  std::string id;
  std::string text;
  std::string reference;
};

// Reads the documents: JSON lines (arXiv or plain) through DocumentReader, or one plain-text
// document (a file or stdin). Bad records are reported on stderr and skipped.
class InputStream {
 public:
  InputStream(const std::string& path, const std::string& format) : path_(path) {
    const bool jsonl = format == "arxiv" || format == "plain" ||
                       (format == "auto" && (path == "-" || fs::path(path).extension() == ".jsonl" ||
                                             fs::path(path).extension() == ".json"));
    if (!jsonl) {
      std::ostringstream text;
      if (path == "-") {
        text << std::cin.rdbuf();
      } else {
        std::ifstream in(path, std::ios::binary);
        if (!in) throw std::runtime_error("cannot open '" + path + "'");
        text << in.rdbuf();
      }
      text_ = text.str();
      return;
    }
    pyramidion::ReaderOptions options;
    options.format = format == "auto" ? pyramidion::DataFormat::automatic : pyramidion::data_format_from_string(format);
    options.skip_bad = true;
    options.require_summary = false;
    reader_ = std::make_unique<pyramidion::DocumentReader>(path, options);
  }

  bool next(Input& out) {
    if (!reader_) {
      if (done_) return false;
      done_ = true;
      out = {path_ == "-" ? "stdin" : fs::path(path_).stem().string(), text_, ""};
      return true;
    }
    pyramidion::Document doc;
    const bool got = reader_->next(doc);
    for (const auto& reason : reader_->take_new_skip_reasons())
      std::cerr << "pyramidion-summarize: skipped a bad record: " << reason << "\n";
    if (!got) return false;
    out = {doc.id, doc.document, doc.summary};
    return true;
  }
  int64_t skipped() const { return reader_ ? reader_->skipped() : 0; }

 private:
  std::string path_;
  std::unique_ptr<pyramidion::DocumentReader> reader_;
  std::string text_;
  bool done_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Summarize documents with a pyramidion checkpoint: JSON lines in (arXiv/PubMed or {id, "
               "document}), JSON lines out ({id, summary, score, ...}) in input order."};
  std::string checkpoint, input, output, format = "auto", highlight;
  int64_t chunk = 64, highlight_max = 100, threads = 0;
  app.add_option("--checkpoint", checkpoint, "checkpoint directory (pyramidion-train's out/latest)")->required();
  app.add_option("--input", input, "documents: .jsonl (arXiv or plain), a text file, or - for stdin")->required();
  app.add_option("--output", output, "summaries as JSON lines, or - for stdout")->required();
  app.add_option("--format", format, "input format")
      ->check(CLI::IsMember({"auto", "arxiv", "plain", "text"}))
      ->capture_default_str();
  // Generation settings: the checkpoint's generation.json (if any) over the defaults; flags last.
  std::string beam, max_length, min_length, length_penalty, no_repeat, max_tokens;
  app.add_option("--beam", beam, "beam size (default 4, or the checkpoint's generation.json)");
  app.add_option("--max-length", max_length, "most summary tokens (default: the model's max_target_length)");
  app.add_option("--min-length", min_length, "fewest summary tokens (default 0)");
  app.add_option("--length-penalty", length_penalty, "score = log p / length^penalty (default 1.0)");
  app.add_option("--no-repeat-ngram", no_repeat, "no repeated n-gram of this size (default 3; 0 = off)");
  app.add_option("--max-tokens", max_tokens, "batch budget: documents x longest document tokens (default 65536)");
  app.add_option("--chunk", chunk, "documents read and written per round (memory bound)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  app.add_option("--highlight", highlight, "also write an HTML page marking the tokens each pooling layer kept");
  app.add_option("--highlight-max-docs", highlight_max, "documents shown on the highlight page")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  app.add_option("--threads", threads, "intra-op threads (0 = LibTorch's default)")->check(CLI::NonNegativeNumber);
  std::string device = "cpu";
  app.add_option("--device", device, "cpu or cuda[:N]")->capture_default_str();
  app.footer("\nExit status: 0 all documents summarized; 3 finished, but some records were bad (each reported "
             "on stderr with its file and line; the others were summarized); 2 invalid arguments or options; "
             "1 other errors (--output is left as it was; summaries written before the failure are kept in a "
             "hidden .partial file next to it, named in the message).");
  CLI11_PARSE(app, argc, argv);

  // The output is written to `temp` (flushed after every chunk) and renamed over --output at the
  // end, so a failed run never replaces a previous output. When a run fails after writing some
  // summaries, they are kept in `temp` and the message says where; otherwise `temp` is removed.
  std::string temp;
  int64_t documents = 0;
  const auto abandon_temp = [&]() -> std::string {
    std::error_code ec;
    if (temp.empty()) return "";
    if (documents > 0 && fs::exists(temp, ec))
      return " (the " + std::to_string(documents) + " summaries written before the failure are in '" + temp + "')";
    fs::remove(temp, ec);
    return "";
  };
  try {
    auto options = pyramidion::SummarizeOptions::from_checkpoint(checkpoint);
    const auto as_int = [](const std::string& flag, const std::string& v) {
      try {
        size_t used = 0;
        const int64_t x = std::stoll(v, &used);
        if (used == v.size()) return x;
      } catch (const std::exception&) {
      }
      throw std::invalid_argument(flag + " = '" + v + "' is not an integer");
    };
    if (!beam.empty()) options.beam_size(as_int("--beam", beam));
    if (!max_length.empty()) options.max_length(as_int("--max-length", max_length));
    if (!min_length.empty()) options.min_length(as_int("--min-length", min_length));
    if (!no_repeat.empty()) options.no_repeat_ngram_size(as_int("--no-repeat-ngram", no_repeat));
    if (!max_tokens.empty()) options.max_tokens(as_int("--max-tokens", max_tokens));
    if (!length_penalty.empty()) {
      try {
        options.length_penalty(std::stod(length_penalty));
      } catch (const std::exception&) {
        throw std::invalid_argument("--length-penalty = '" + length_penalty + "' is not a number");
      }
    }
    if (threads > 0) at::set_num_threads(static_cast<int>(threads));
    options.keep_positions(!highlight.empty());

    if (device != "cpu" && !torch::cuda::is_available())
      throw std::invalid_argument("--device " + device + ": no CUDA device is available here (use cpu)");
    auto summarizer = pyramidion::Summarizer::load(checkpoint);
    summarizer.model()->to(at::Device(device));  // at::Device parses "cuda:1"; invalid names throw
    options.check(summarizer.model()->config());  // before any input is read
    InputStream in(input, format);
    std::ofstream file;
    std::ostream* out = &std::cout;
    if (output != "-") {
      // Written next to the target and renamed at the end: a failed run leaves no half file.
      temp = (fs::path(output).parent_path() / ("." + fs::path(output).filename().string() + ".partial")).string();
      file.open(temp, std::ios::binary | std::ios::trunc);
      if (!file) throw std::runtime_error("cannot write '" + temp + "'");
      out = &file;
    }
    std::vector<pyramidion::HighlightDocument> pages;
    const auto& config = summarizer.model()->config();
    std::vector<int64_t> layer_lengths;
    for (const int64_t k : config.pooled_lengths)
      if (k > 0) layer_lengths.push_back(k);

    const auto start = std::chrono::steady_clock::now();
    int64_t source_tokens = 0, summary_tokens = 0, failed = 0;
    std::vector<Input> batch;
    Input doc;
    bool more = true;
    while (more) {
      batch.clear();
      while (static_cast<int64_t>(batch.size()) < chunk && (more = in.next(doc))) batch.push_back(doc);
      if (batch.empty()) break;
      std::vector<std::string> texts;
      for (const auto& d : batch) texts.push_back(d.text);
      std::vector<pyramidion::Summary> summaries;
      try {
        summaries = summarizer.summarize(texts, options);
      } catch (const std::invalid_argument& e) {
        // One bad document (e.g. empty text) must not stop the others: retry one by one.
        summaries.clear();
        for (size_t i = 0; i < batch.size(); ++i) {
          try {
            summaries.push_back(summarizer.summarize({texts[i]}, options).front());
          } catch (const std::invalid_argument& one) {
            std::cerr << "pyramidion-summarize: document '" << batch[i].id << "': " << one.what() << "\n";
            summaries.emplace_back();
            summaries.back().source_tokens = -1;
            ++failed;
          }
        }
      }
      for (size_t i = 0; i < batch.size(); ++i) {
        const auto& s = summaries[i];
        if (s.source_tokens < 0) continue;
        nlohmann::ordered_json line;
        line["id"] = batch[i].id;
        line["summary"] = s.summary;
        line["score"] = s.score;
        line["source_tokens"] = s.source_tokens;
        line["document_tokens"] = s.document_tokens;
        line["summary_tokens"] = s.tokens.size();
        line["seconds"] = s.seconds;
        *out << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
        ++documents;
        source_tokens += s.source_tokens;
        summary_tokens += static_cast<int64_t>(s.tokens.size());
        if (!highlight.empty() && static_cast<int64_t>(pages.size()) < highlight_max) {
          pyramidion::HighlightDocument page;
          page.id = batch[i].id;
          page.text = batch[i].text;
          for (const auto& piece : s.pieces) page.tokens.push_back({piece.begin, piece.end});
          page.tokens_read = s.source_tokens;
          page.kept = s.kept;
          page.layer_lengths = layer_lengths;
          page.summary = s.summary;
          page.reference = batch[i].reference;
          pages.push_back(std::move(page));
        }
      }
      out->flush();
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::cerr << "pyramidion-summarize: " << documents << " documents, " << static_cast<int64_t>(documents / elapsed)
                << " docs/s, " << static_cast<int64_t>(source_tokens / elapsed) << " source tokens/s, "
                << static_cast<int64_t>(summary_tokens / elapsed) << " summary tokens/s" << std::endl;
    }
    if (output != "-") {
      file.close();
      if (!file) throw std::runtime_error("cannot write '" + temp + "'");
      if (documents == 0 && failed > 0) {
        abandon_temp();
        throw std::runtime_error("no document could be summarized (reasons above); '" + output + "' left as it was");
      }
      fs::rename(temp, output);
      temp.clear();
    }
    if (!highlight.empty()) {
      pyramidion::write_highlight_html(highlight, pages);
      std::cerr << "pyramidion-summarize: highlight page " << highlight << " (" << pages.size() << " documents)\n";
    }
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cerr << "pyramidion-summarize: done: " << documents << " documents in " << elapsed << " s";
    if (in.skipped() + failed > 0) std::cerr << "; " << in.skipped() + failed << " bad records reported above";
    std::cerr << std::endl;
    return in.skipped() + failed > 0 ? 3 : 0;
  } catch (const std::invalid_argument& e) {
    std::cerr << "pyramidion-summarize: invalid argument: " << e.what() << abandon_temp() << std::endl;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "pyramidion-summarize: error: " << e.what() << abandon_temp() << std::endl;
    return 1;
  }
}
