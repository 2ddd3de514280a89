// ROUGE (see include/pyramidion/rouge.h): rouge-score's tokenizer, n-gram, LCS and summary-level
// LCS scores, bootstrap aggregation, and the reports.
#include <pyramidion/rouge.h>

#include <nlohmann/json.hpp>

#include "eval/porter_stemmer.h"
#include "util/text.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cmath>
#include <cstring>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace pyramidion {
namespace {

using json = nlohmann::json;

// A token sequence as ids into a vocabulary shared by the two sides of one comparison, so that
// equality, counting and n-gram keys work on integers.
using Ids = std::vector<int32_t>;

class Vocabulary {
 public:
  Ids ids(const std::vector<std::string>& tokens) {
    Ids out;
    out.reserve(tokens.size());
    for (const auto& t : tokens) out.push_back(index_.emplace(t, static_cast<int32_t>(index_.size())).first->second);
    return out;
  }
  size_t size() const { return index_.size(); }

 private:
  std::unordered_map<std::string, int32_t> index_;
};

double fmeasure(double precision, double recall) {
  return precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0.0;
}

RougeScore make_score(int64_t hits, int64_t prediction_count, int64_t reference_count) {
  RougeScore s;
  s.precision = static_cast<double>(hits) / static_cast<double>(std::max<int64_t>(prediction_count, 1));
  s.recall = static_cast<double>(hits) / static_cast<double>(std::max<int64_t>(reference_count, 1));
  s.f1 = fmeasure(s.precision, s.recall);
  return s;
}

// ROUGE-N: n-grams counted with multiplicity and clipped (Lin 2004, section 2).
RougeScore rouge_n(const Ids& prediction, const Ids& reference, size_t n) {
  // key: the n ids' bytes
  const auto grams = [n](const Ids& ids) {
    std::unordered_map<std::string, int64_t> counts;
    for (size_t i = 0; i + n <= ids.size(); ++i)
      ++counts[std::string(reinterpret_cast<const char*>(ids.data() + i), n * sizeof(int32_t))];
    return counts;
  };
  const auto p = grams(prediction), r = grams(reference);
  int64_t hits = 0;
  for (const auto& [gram, count] : r) {
    const auto it = p.find(gram);
    if (it != p.end()) hits += std::min(count, it->second);
  }
  const int64_t np = prediction.size() >= n ? static_cast<int64_t>(prediction.size() - n + 1) : 0;
  const int64_t nr = reference.size() >= n ? static_cast<int64_t>(reference.size() - n + 1) : 0;
  return make_score(hits, np, nr);
}

// Length of the longest common subsequence, two rows of the dynamic programme.
int64_t lcs_length(const Ids& a, const Ids& b) {
  std::vector<int64_t> previous(b.size() + 1, 0), current(b.size() + 1, 0);
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j)
      current[j] = a[i - 1] == b[j - 1] ? previous[j - 1] + 1 : std::max(previous[j], current[j - 1]);
    std::swap(previous, current);
  }
  return previous[b.size()];
}

// ROUGE-L (Lin 2004, section 3.1).
RougeScore rouge_l(const Ids& prediction, const Ids& reference) {
  if (prediction.empty() || reference.empty()) return {};
  const int64_t lcs = lcs_length(reference, prediction);
  return make_score(lcs, static_cast<int64_t>(prediction.size()), static_cast<int64_t>(reference.size()));
}

// Marks the positions of `ref` on one longest common subsequence with `can`. Which LCS matters for
// the union in ROUGE-Lsum: like rouge-score, backtrack from the end, taking a match, else moving
// along `can` only when that keeps a strictly longer LCS.
void mark_lcs(const Ids& ref, const Ids& can, std::vector<char>& marked) {
  const size_t rows = ref.size(), cols = can.size();
  std::vector<int32_t> table((rows + 1) * (cols + 1), 0);  // (rows+1, cols+1), row-major
  const auto at = [&](size_t i, size_t j) -> int32_t& { return table[i * (cols + 1) + j]; };
  for (size_t i = 1; i <= rows; ++i)
    for (size_t j = 1; j <= cols; ++j)
      at(i, j) = ref[i - 1] == can[j - 1] ? at(i - 1, j - 1) + 1 : std::max(at(i - 1, j), at(i, j - 1));
  size_t i = rows, j = cols;
  while (i > 0 && j > 0) {
    if (ref[i - 1] == can[j - 1]) {
      marked[i - 1] = 1;
      --i;
      --j;
    } else if (at(i, j - 1) > at(i - 1, j)) {
      --j;
    } else {
      --i;
    }
  }
}

// ROUGE-Lsum: summary-level LCS (Lin 2004, section 3.2), with ROUGE-1.5.5's rule that a token
// counts at most as often as it occurs in each summary.
RougeScore rouge_lsum(const std::vector<Ids>& prediction, const std::vector<Ids>& reference, size_t vocabulary) {
  if (prediction.empty() || reference.empty()) return {};
  int64_t n = 0, m = 0;
  std::vector<int64_t> left_prediction(vocabulary, 0), left_reference(vocabulary, 0);
  for (const auto& s : prediction) {
    n += static_cast<int64_t>(s.size());
    for (const int32_t t : s) ++left_prediction[t];
  }
  for (const auto& s : reference) {
    m += static_cast<int64_t>(s.size());
    for (const int32_t t : s) ++left_reference[t];
  }
  if (n == 0 || m == 0) return {};
  int64_t hits = 0;
  for (const auto& r : reference) {
    std::vector<char> marked(r.size(), 0);  // the union of the LCSs with every prediction sentence
    for (const auto& c : prediction) mark_lcs(r, c, marked);
    for (size_t i = 0; i < r.size(); ++i) {
      const int32_t t = r[i];
      if (marked[i] && left_prediction[t] > 0 && left_reference[t] > 0) {
        ++hits;
        --left_prediction[t];
        --left_reference[t];
      }
    }
  }
  return make_score(hits, n, m);
}

// rouge-score's sentences: split at "\n", empty strings dropped.
std::vector<std::string> sentences(const std::string& text) {
  std::vector<std::string> out;
  size_t begin = 0;
  while (begin <= text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    if (end > begin) out.push_back(text.substr(begin, end - begin));
    begin = end + 1;
  }
  return out;
}

void check_corpus_options(const std::vector<std::string>& predictions, const std::vector<std::string>& references,
                          const RougeCorpusOptions& options) {
  if (predictions.size() != references.size())
    throw std::invalid_argument("rouge_corpus: " + std::to_string(predictions.size()) + " predictions but " +
                                std::to_string(references.size()) + " references (one reference per prediction)");
  if (predictions.empty()) throw std::invalid_argument("rouge_corpus: no documents to score");
  options.check();
}

// numpy.percentile's default (linear interpolation between the closest ranks) of sorted values.
double percentile(const std::vector<double>& sorted, double q) {
  const double position = q * static_cast<double>(sorted.size() - 1);
  const size_t below = static_cast<size_t>(std::floor(position));
  const size_t above = std::min(below + 1, sorted.size() - 1);
  return sorted[below] + (sorted[above] - sorted[below]) * (position - static_cast<double>(below));
}

// The 12 values of one document's scores, in a fixed order, and back.
constexpr size_t kValues = 12;
void flatten(const RougeScores& s, double* out) {
  const RougeScore* measures[] = {&s.rouge1, &s.rouge2, &s.rougeL, &s.rougeLsum};
  for (size_t k = 0; k < 4; ++k) {
    out[3 * k] = measures[k]->precision;
    out[3 * k + 1] = measures[k]->recall;
    out[3 * k + 2] = measures[k]->f1;
  }
}

// Uniform in [0, n) from the generator's raw output (rejection sampling): unlike
// std::uniform_int_distribution, the same on every standard library.
uint64_t uniform_below(std::mt19937_64& rng, uint64_t n) {
  const uint64_t limit = std::mt19937_64::max() - std::mt19937_64::max() % n;
  uint64_t x;
  do x = rng();
  while (x >= limit);
  return x % n;
}

}  // namespace

void RougeCorpusOptions::check() const {
  if (bootstrap_samples() < 0 || bootstrap_samples() > kMaxBootstrapSamples)
    throw std::invalid_argument("RougeCorpusOptions.bootstrap_samples = " + std::to_string(bootstrap_samples()) +
                                " must be in [0, " + std::to_string(kMaxBootstrapSamples) +
                                "] (0 = no confidence interval; each resample keeps 12 means in memory)");
  if (!(confidence() > 0 && confidence() < 1))
    throw std::invalid_argument("RougeCorpusOptions.confidence = " + detail::format_double(confidence()) +
                                " must be in (0, 1), e.g. 0.95");
}

std::vector<std::string> rouge_tokenize(const std::string& text, bool use_stemmer) {
  std::vector<std::string> tokens;
  std::string current;
  const auto finish = [&] {
    if (current.empty()) return;
    // rouge-score stems only tokens of more than 3 characters.
    if (use_stemmer && current.size() > 3) current = detail::porter_stem(current);
    if (!current.empty()) tokens.push_back(std::move(current));
    current.clear();
  };
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  for (size_t i = 0; i < n; ++i) {
    const unsigned char c = p[i];
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      current.push_back(static_cast<char>(c));
    } else if (c >= 'A' && c <= 'Z') {
      current.push_back(static_cast<char>(c - 'A' + 'a'));
    } else if (c == 0xC4 && i + 1 < n && p[i + 1] == 0xB0) {
      // U+0130 lowercases to "i" + U+0307 (a combining dot, a separator) in Python.
      current.push_back('i');
      finish();
      ++i;
    } else if (c == 0xE2 && i + 2 < n && p[i + 1] == 0x84 && p[i + 2] == 0xAA) {
      current.push_back('k');  // U+212A KELVIN SIGN lowercases to "k"
      i += 2;
    } else {
      finish();
    }
  }
  finish();
  return tokens;
}

RougeScores rouge(const std::string& prediction, const std::string& reference, const RougeOptions& options) {
  Vocabulary vocabulary;
  const Ids p = vocabulary.ids(rouge_tokenize(prediction, options.use_stemmer()));
  const Ids r = vocabulary.ids(rouge_tokenize(reference, options.use_stemmer()));
  std::vector<Ids> p_sentences, r_sentences;
  for (const auto& s : sentences(prediction)) p_sentences.push_back(vocabulary.ids(rouge_tokenize(s, options.use_stemmer())));
  for (const auto& s : sentences(reference)) r_sentences.push_back(vocabulary.ids(rouge_tokenize(s, options.use_stemmer())));
  RougeScores out;
  out.rouge1 = rouge_n(p, r, 1);
  out.rouge2 = rouge_n(p, r, 2);
  out.rougeL = rouge_l(p, r);
  out.rougeLsum = rouge_lsum(p_sentences, r_sentences, vocabulary.size());
  return out;
}

RougeReport rouge_corpus(const std::vector<std::string>& predictions, const std::vector<std::string>& references,
                         const RougeCorpusOptions& options) {
  check_corpus_options(predictions, references, options);
  RougeReport report;
  report.options = options;
  const size_t docs = predictions.size();
  report.documents = static_cast<int64_t>(docs);
  report.per_document.reserve(docs);
  std::vector<double> values(docs * kValues);  // (docs, 12)
  for (size_t d = 0; d < docs; ++d) {
    report.per_document.push_back(rouge(predictions[d], references[d], options.rouge()));
    flatten(report.per_document.back(), values.data() + d * kValues);
  }
  double mean[kValues] = {};
  for (size_t d = 0; d < docs; ++d)
    for (size_t k = 0; k < kValues; ++k) mean[k] += values[d * kValues + k];
  for (double& m : mean) m /= static_cast<double>(docs);

  // Percentile bootstrap: resample the documents with replacement, one index draw per resample
  // shared by all 12 values.
  double low[kValues], high[kValues];
  std::copy(mean, mean + kValues, low);
  std::copy(mean, mean + kValues, high);
  const auto samples = static_cast<size_t>(options.bootstrap_samples());
  if (samples > 0) {
    std::mt19937_64 rng(options.seed());
    std::vector<std::vector<double>> resampled(kValues, std::vector<double>(samples));  // (12, samples)
    for (size_t s = 0; s < samples; ++s) {
      double sum[kValues] = {};
      for (size_t d = 0; d < docs; ++d) {
        const double* row = values.data() + uniform_below(rng, docs) * kValues;
        for (size_t k = 0; k < kValues; ++k) sum[k] += row[k];
      }
      for (size_t k = 0; k < kValues; ++k) resampled[k][s] = sum[k] / static_cast<double>(docs);
    }
    const double tail = (1 - options.confidence()) / 2;
    for (size_t k = 0; k < kValues; ++k) {
      std::sort(resampled[k].begin(), resampled[k].end());
      low[k] = percentile(resampled[k], tail);
      high[k] = percentile(resampled[k], 1 - tail);
    }
  }
  RougeMeasureReport* measures[] = {&report.rouge1, &report.rouge2, &report.rougeL, &report.rougeLsum};
  for (size_t m = 0; m < 4; ++m) {
    RougeInterval* parts[] = {&measures[m]->precision, &measures[m]->recall, &measures[m]->f1};
    for (size_t j = 0; j < 3; ++j) *parts[j] = {low[3 * m + j], mean[3 * m + j], high[3 * m + j]};
  }
  return report;
}

namespace {

json score_json(const RougeScore& s) { return {{"precision", s.precision}, {"recall", s.recall}, {"f1", s.f1}}; }

json interval_json(const RougeInterval& v) { return {{"low", v.low}, {"mid", v.mid}, {"high", v.high}}; }

json measure_json(const RougeMeasureReport& m) {
  return {{"precision", interval_json(m.precision)}, {"recall", interval_json(m.recall)}, {"f1", interval_json(m.f1)}};
}

}  // namespace

std::string rouge_report_to_json(const RougeReport& report) {
  json out = json::object();
  out["documents"] = report.documents;
  out["use_stemmer"] = report.options.rouge().use_stemmer();
  out["bootstrap_samples"] = report.options.bootstrap_samples();
  out["confidence"] = report.options.confidence();
  out["seed"] = report.options.seed();
  out["rouge1"] = measure_json(report.rouge1);
  out["rouge2"] = measure_json(report.rouge2);
  out["rougeL"] = measure_json(report.rougeL);
  out["rougeLsum"] = measure_json(report.rougeLsum);
  return out.dump(2) + "\n";
}

std::string rouge_report_to_markdown(const RougeReport& report) {
  const auto percent = [](double v) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%6.2f", 100 * v);
    return std::string(buffer);
  };
  const auto& o = report.options;
  std::string out = std::to_string(report.documents) + " documents, Porter stemming " +
                    (o.rouge().use_stemmer() ? "on" : "off");
  if (o.bootstrap_samples() > 0) {
    std::ostringstream confidence;
    confidence << 100 * o.confidence();  // "95", as an ostream prints it
    out += ", " + confidence.str() + "% bootstrap intervals (" + std::to_string(o.bootstrap_samples()) +
           " resamples, seed " + std::to_string(o.seed()) + ")";
  }
  out += "\n\n| measure    |     F1 | F1 interval      | precision | recall |\n"
         "|------------|-------:|------------------|----------:|-------:|\n";
  const std::pair<const char*, const RougeMeasureReport*> rows[] = {
      {"ROUGE-1   ", &report.rouge1}, {"ROUGE-2   ", &report.rouge2},
      {"ROUGE-L   ", &report.rougeL}, {"ROUGE-Lsum", &report.rougeLsum}};
  for (const auto& [name, m] : rows)
    out += std::string("| ") + name + " | " + percent(m->f1.mid) + " | [" + percent(m->f1.low) + ", " +
           percent(m->f1.high) + "] |    " + percent(m->precision.mid) + " | " + percent(m->recall.mid) + " |\n";
  return out;
}

std::string rouge_per_document_to_jsonl(const RougeReport& report, const std::vector<std::string>& ids) {
  if (ids.size() != report.per_document.size())
    throw std::invalid_argument("rouge_per_document_to_jsonl: " + std::to_string(ids.size()) + " ids for " +
                                std::to_string(report.per_document.size()) + " documents");
  std::string text;
  for (size_t i = 0; i < ids.size(); ++i) {
    const RougeScores& s = report.per_document[i];
    json line = json::object();
    line["id"] = ids[i];
    line["rouge1"] = score_json(s.rouge1);
    line["rouge2"] = score_json(s.rouge2);
    line["rougeL"] = score_json(s.rougeL);
    line["rougeLsum"] = score_json(s.rougeLsum);
    // Invalid UTF-8 in an id (possible from a non-JSON caller) is replaced rather than thrown on.
    text += line.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  }
  return text;
}

}  // namespace pyramidion
