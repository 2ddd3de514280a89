// Private: the storage behind a TokenizedCorpus (include/pyramidion/corpus.h), shared by its
// copies and views. One read path for both kinds: every accessor reads through the pointers below,
// which point either into the in-memory buffers that add() fills or into a dataset's mapped files
// (dataset.cpp), whose layout is the same (docs/data.md, "The dataset directory").
#pragma once

#include <pyramidion/corpus.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "util/mapped_file.h"

namespace pyramidion {

struct TokenizedCorpus::Storage {
  // What every accessor reads: `documents` examples; the offset arrays have documents + 1 entries
  // each, in tokens (source, target) or bytes (ids), starting at 0 and non-decreasing.
  int64_t documents = 0;
  int token_bytes = 4;  // 2 (uint16) or 4 (int32), little-endian
  const unsigned char* source = nullptr;
  const unsigned char* target = nullptr;
  const int64_t* source_offsets = nullptr;
  const int64_t* target_offsets = nullptr;
  const int64_t* id_offsets = nullptr;
  const char* ids = nullptr;
  bool mapped = false;

  // In memory: the buffers the pointers point into (add()).
  std::vector<int32_t> source_buffer, target_buffer;
  std::vector<int64_t> source_offset_buffer{0}, target_offset_buffer{0}, id_offset_buffer{0};
  std::string id_buffer;

  // Mapped: the files the pointers point into (kept open for the storage's lifetime).
  std::vector<detail::MappedFile> files;

  /// Points the read pointers at the in-memory buffers (after they grew).
  void point_at_buffers() {
    token_bytes = 4;
    documents = static_cast<int64_t>(id_offset_buffer.size()) - 1;
    source = reinterpret_cast<const unsigned char*>(source_buffer.data());
    target = reinterpret_cast<const unsigned char*>(target_buffer.data());
    source_offsets = source_offset_buffer.data();
    target_offsets = target_offset_buffer.data();
    id_offsets = id_offset_buffer.data();
    ids = id_buffer.data();
  }

  /// A copy of an in-memory storage (for add() on a shared corpus).
  std::shared_ptr<Storage> clone_buffers() const {
    auto copy = std::make_shared<Storage>();
    copy->source_buffer = source_buffer;
    copy->target_buffer = target_buffer;
    copy->source_offset_buffer = source_offset_buffer;
    copy->target_offset_buffer = target_offset_buffer;
    copy->id_offset_buffer = id_offset_buffer;
    copy->id_buffer = id_buffer;
    copy->point_at_buffers();
    return copy;
  }

  /// Mapped: throws detail::FileChanged when a file lost pages under a read (no system call).
  void check_faults() const {
    for (const auto& f : files)
      if (f.faulted()) f.check_unchanged();
  }
  /// Mapped: throws detail::FileChanged when a file changed since it was mapped (a read of it
  /// faulted, or its size changed: one fstat per file). Called after the tokens of an example are
  /// read, so that nothing read from a changed file is used.
  void check_files() const {
    for (const auto& f : files) f.check_unchanged();
  }

  /// Token `k` of a side's flat token array.
  int64_t token(const unsigned char* side, int64_t k) const {
    if (token_bytes == 2) {
      uint16_t v;
      std::memcpy(&v, side + 2 * k, 2);
      return v;
    }
    int32_t v;
    std::memcpy(&v, side + 4 * k, 4);
    return v;
  }
};

}  // namespace pyramidion
