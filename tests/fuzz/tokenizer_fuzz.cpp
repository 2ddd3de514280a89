// Fuzz target: a tokenizer model (a checkpoint's tokenizer.model), read by
// Tokenizer::from_serialized (include/pyramidion/tokenizer.h; Tokenizer::load reads the file and
// calls the same code).
//
// A model that loads is then used as the tools use it, on a fixed text and on the input's first
// bytes taken as text (any bytes, invalid UTF-8 included). Properties checked (tokenizer.h): ids in
// [0, vocab_size); encode_with_offsets gives encode's ids with spans in order, not overlapping and
// inside the text; decode and id_to_piece take every valid id and refuse vocab_size; the model
// reloads from serialized() and encodes the same.
#include <pyramidion/tokenizer.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fuzz_support.h"

namespace {

using pyramidion::Tokenizer;
using pyramidion_fuzz::fail;

void check_text(const Tokenizer& t, const std::string& text) {
  const auto ids = t.encode(text);
  for (const int64_t id : ids)
    if (id < 0 || id >= t.vocab_size()) fail("encode: id " + std::to_string(id) + " outside [0, vocab_size)");
  (void)t.decode(ids);
  const auto pieces = t.encode_with_offsets(text);
  if (pieces.size() != ids.size()) fail("encode_with_offsets: not as many pieces as encode() gives ids");
  size_t last_end = 0;
  for (size_t i = 0; i < pieces.size(); ++i) {
    const auto& p = pieces[i];
    if (p.id != ids[i]) fail("encode_with_offsets: an id differs from encode()'s");
    if (p.begin > p.end || p.end > text.size()) fail("encode_with_offsets: a span outside the text");
    if (p.begin < last_end) fail("encode_with_offsets: spans out of order or overlapping");
    last_end = p.end;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes = pyramidion_fuzz::text_of(data, size);
  std::optional<Tokenizer> loaded;
  if (!pyramidion_fuzz::accepts([&] { loaded.emplace(Tokenizer::from_serialized(bytes)); })) return 0;
  const Tokenizer& t = *loaded;
  const int64_t v = t.vocab_size();
  for (const int64_t id : {t.pad_id(), t.bos_id(), t.eos_id(), t.unk_id()})
    if (id < 0 || id >= v) fail("a special id outside [0, vocab_size)");
  const std::string sample = "A first line, with  two spaces and a tab\there.\nThe ligature \uFB01 and caf\u00e9.\n\n end ";
  const std::string raw = bytes.substr(0, std::min<size_t>(bytes.size(), 256));
  // Used as the tools use it: the library's documented exceptions are accepted, a crash is not.
  pyramidion_fuzz::accepts([&] {
    check_text(t, sample);
    check_text(t, raw);
  });
  std::vector<int64_t> every;
  for (int64_t id = 0; id < std::min<int64_t>(v, 512); ++id) {
    every.push_back(id);
    (void)t.id_to_piece(id);
  }
  (void)t.decode(every);
  if (pyramidion_fuzz::accepts([&] { (void)t.id_to_piece(v); })) fail("id_to_piece(vocab_size) did not throw");
  if (pyramidion_fuzz::accepts([&] { (void)t.decode({v}); })) fail("decode({vocab_size}) did not throw");
  std::optional<Tokenizer> again;
  if (!pyramidion_fuzz::accepts([&] { again.emplace(Tokenizer::from_serialized(t.serialized())); }))
    fail("a loaded model does not reload from serialized()");
  if (again->vocab_size() != v) fail("a model reloaded from serialized() has another vocabulary size");
  std::vector<int64_t> ids;
  if (pyramidion_fuzz::accepts([&] { ids = t.encode(sample); }) && again->encode(sample) != ids)
    fail("a model reloaded from serialized() encodes differently");
  return 0;
}
