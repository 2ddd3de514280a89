// Test-only fixtures of the summarization tests (summarizer, summarize_file and the tool): a tiny
// checkpoint trained once per test binary, and real documents cut to mixed lengths.
#pragma once

#include <pyramidion/data.h>
#include <pyramidion/train.h>

#include "support/train_fixtures.h"

#include <string>
#include <vector>

namespace pyramidion_test {

// A tiny checkpoint trained once for the whole suite (8 updates on 12 papers).
inline const std::string& tiny_checkpoint() {
  static const std::string dir = [] {
    const auto scratch = fresh_dir("summarize_ckpt");
    auto c = tiny_config(scratch);
    c.validate_every = 0;
    return pyramidion::train(c).checkpoint;
  }();
  return dir;
}

// Real test documents cut to different lengths (words), so that batches mix short and long ones
// and some are shorter than the model's 64-token window.
inline std::vector<pyramidion::Document> test_documents() {
  auto docs = pyramidion::read_all(kSource + "/data/aclsum/test.jsonl");
  docs.resize(6);
  const size_t words[] = {5, 12, 30, 400, 8, 2000};
  for (size_t i = 0; i < docs.size(); ++i) {
    std::string cut;
    size_t n = 0, at = 0;
    const auto& text = docs[i].document;
    while (n < words[i] && at < text.size()) {
      const auto next = text.find(' ', at);
      cut += text.substr(at, next == std::string::npos ? std::string::npos : next + 1 - at);
      at = next == std::string::npos ? text.size() : next + 1;
      ++n;
    }
    docs[i].document = cut;
  }
  return docs;
}

}  // namespace pyramidion_test
