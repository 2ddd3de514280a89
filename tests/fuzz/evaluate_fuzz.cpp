// Fuzz target: the inputs of evaluate_files() (include/pyramidion/evaluate.h), pyramidion-evaluate's
// predictions and references files.
//
// The input is split at its first byte 0x01 into a predictions file and a references file (no
// 0x01: the same bytes for both, every prediction then matching its reference). Each is read with
// read_summaries, then both are scored by evaluate_files, with allow_missing and the JSON outputs
// (and once more strictly, without outputs); rouge() scores the two halves as raw text. Properties
// checked (rouge.h): rouge() never throws, and every ROUGE score of a document is in [0, 1].
#include <pyramidion/evaluate.h>
#include <pyramidion/rouge.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "fuzz_support.h"

namespace {

using pyramidion_fuzz::fail;

std::string predictions_path, references_path, report_path, per_document_path;

void check_fraction(double x, const char* what) {
  if (!(x >= 0 && x <= 1)) fail(std::string("a document's ROUGE ") + what + " = " + std::to_string(x) + " outside [0, 1]");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const std::string& dir = pyramidion_fuzz::scratch_dir();
  predictions_path = dir + "/predictions.jsonl";
  references_path = dir + "/references.jsonl";
  report_path = dir + "/report.json";
  per_document_path = dir + "/per_document.jsonl";
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text = pyramidion_fuzz::text_of(data, size);
  const size_t split = text.find('\x01');

  // rouge() on the raw halves: documented never to throw, for any bytes.
  const std::string prediction = text.substr(0, split);
  const std::string reference = split == std::string::npos ? text : text.substr(split + 1);
  for (const bool stem : {false, true}) {
    const auto r = pyramidion::rouge(prediction.substr(0, 4096), reference.substr(0, 4096),
                                     pyramidion::RougeOptions().use_stemmer(stem));
    for (const auto* m : {&r.rouge1, &r.rouge2, &r.rougeL, &r.rougeLsum}) {
      check_fraction(m->precision, "precision");
      check_fraction(m->recall, "recall");
      check_fraction(m->f1, "F1");
    }
  }

  pyramidion_fuzz::write_file(predictions_path, prediction);
  pyramidion_fuzz::write_file(references_path, reference);
  for (const std::string* path : {&predictions_path, &references_path})
    pyramidion_fuzz::accepts([&] { (void)pyramidion::read_summaries(*path); });
  pyramidion::Evaluation e;
  const bool scored = pyramidion_fuzz::accepts([&] {
    e = pyramidion::evaluate_files(pyramidion::EvaluateOptions(predictions_path, references_path)
                                       .rouge(pyramidion::RougeCorpusOptions().bootstrap_samples(20).rouge(
                                           pyramidion::RougeOptions().use_stemmer(true)))
                                       .allow_missing(true)
                                       .json(report_path)
                                       .per_document(per_document_path));
  });
  if (scored) {
    if (e.report.per_document.size() != e.ids.size()) fail("evaluate_files: not one score per id");
    for (const auto& d : e.report.per_document) {
      for (const auto* m : {&d.rouge1, &d.rouge2, &d.rougeL, &d.rougeLsum}) {
        check_fraction(m->precision, "precision");
        check_fraction(m->recall, "recall");
        check_fraction(m->f1, "F1");
      }
    }
  }
  pyramidion_fuzz::accepts([&] {
    (void)pyramidion::evaluate_files(pyramidion::EvaluateOptions(predictions_path, references_path)
                                         .rouge(pyramidion::RougeCorpusOptions().bootstrap_samples(0)));
  });
  return 0;
}
