// Highlighting: an HTML page showing, for each document, which source tokens survived each pooling
// layer (the paper's "highlighting": which parts of the input the model read to write the summary).
//
// Input: a document's text, its tokens' byte spans (Tokenizer::encode_with_offsets) and, per pooling
// layer, the original source positions it kept (EncoderOutput::kept_positions, one row per document).
//
// Depth: a token's depth is the number of pooling layers it survived consecutively from the first
// (0 = dropped by layer 1, L = kept by every one of the L layers). Each layer pools the previous
// layer's output, so its survivors are a subset of the previous layer's and depth is exactly "the
// last layer that kept it". The page does not rely on that: a position kept by layers 1 and 3 but
// not by layer 2 gets depth 1, and the legend's "kept" and "marked" counts then differ.
//
// Page structure (one self-contained HTML5 file: inline CSS, no script, no external resource):
//
//   <h1>title</h1>  <nav>links to each section (with more than one document)</nav>
//   <section id="d<index>">
//     <h2>id</h2>
//     <h3>Summary</h3><div class="s">summary</div>  <h3>Reference</h3><div class="r">reference</div>
//     (when given)  <h3>Document</h3>
//     <ul class="legend"> <li><span class="k1">layer 1</span>: 2048 kept of 6000 tokens read
//       (target length 2048); 2048 tokens marked</li> ... </ul>
//     <p class="legend">how to read the colours; <span class="x">N of M tokens not read</span></p>
//     (a model without pooling layers: one <p class="legend"> saying so, and no marks)
//     <div class="t">text</div>
//   </section>
//
// In the text, each maximal run of consecutive tokens with the same depth d >= 1 is one
// `<span class="k<d>" data-p="<position of the run's first token>">`; the run covers the bytes from
// its first token's begin to its last token's end (bytes between its tokens included). Depth-0
// tokens and bytes between runs are plain text. Tokens the model did not read (beyond tokens_read)
// are one `<span class="x">` from the first unread token's begin to the end of the text. Merging
// runs instead of wrapping every token keeps a 6000-token document (45 KB of text, 3 layers keeping
// 2048, 512, 128) at 90 KB, 110 KB if the kept tokens are scattered at random; a token's mark is
// recovered from its byte span: text content concatenated (unescaped) is the document's text, byte
// for byte. Tokens with an empty span (sentencepiece's lone "\u2581" at the start of a line) cover no
// text and have no visible mark.
//
// Text is escaped everywhere (& < > " ' and control characters other than tab and newline as
// numeric references) and shown with white-space: pre-wrap, so newlines and spaces are kept.
// Bytes are emitted unchanged otherwise: text that is not valid UTF-8 shows U+FFFD in a browser.
//
// This header needs of LibTorch only torch/arg.h (the options macro): it compiles as C++17.
#pragma once

#include <torch/arg.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace pyramidion {

/// The byte span of one source token in HighlightDocument::text: text[begin, end).
struct HighlightToken {
  size_t begin = 0;
  size_t end = 0;
};

/// One document of the page.
struct HighlightDocument {
  /// Shown as the section's title (any text; escaped).
  std::string id;
  /// The document as given to the tokenizer (UTF-8).
  std::string text;
  /// Source tokens in order: tokens[j] is the model's source position j. Spans must be in text,
  /// in order and not overlapping (begin >= the previous end), on UTF-8 character boundaries;
  /// bytes in no span are shown unmarked.
  std::vector<HighlightToken> tokens;
  /// Tokens the model read (the source truncated to max_source_length); the rest are shown as not
  /// read. -1 = all of them; otherwise in [0, tokens.size()].
  int64_t tokens_read = -1;
  /// Per pooling layer, in layer order: the source positions it kept, in any order; -1 (padding)
  /// is ignored, duplicates count once. Every other value must be in [0, tokens read). Empty for a
  /// model without pooling (blockwise attention only): the text is shown without marks.
  std::vector<std::vector<int64_t>> kept;
  /// Per pooling layer: its target length, shown in the legend; empty = not shown, otherwise one
  /// entry per layer of `kept`.
  std::vector<int64_t> layer_lengths;
  /// The generated summary, shown above the text.
  std::string summary;
  /// The reference summary; empty = not shown.
  std::string reference;
};

/// Options of render_highlight_html().
struct HighlightOptions {
  /// The page's <title> and heading.
  TORCH_ARG(std::string, title) = "pyramidion: what the model kept";
};

/// The page for `docs`, in order. Throws std::invalid_argument naming the document's id and the
/// offending value for a token span outside the text, overlapping or out of order, or cutting a
/// UTF-8 character; a tokens_read outside [-1, tokens.size()]; a kept position outside
/// [0, tokens read) other than -1; layer_lengths neither empty nor one per layer.
std::string render_highlight_html(const std::vector<HighlightDocument>& docs, const HighlightOptions& options = {});

/// render_highlight_html() written to `path` atomically (a temporary file renamed over it).
/// Throws what render_highlight_html() throws, and std::runtime_error naming `path` when it
/// cannot be written.
void write_highlight_html(const std::string& path, const std::vector<HighlightDocument>& docs,
                          const HighlightOptions& options = {});

}  // namespace pyramidion
