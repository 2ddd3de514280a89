// Highlighting page: see include/pyramidion/highlight.h for the page's structure and the meaning of
// a token's depth.
#include <pyramidion/highlight.h>

#include "util/output_file.h"

#include <algorithm>
#include <stdexcept>

namespace pyramidion {
namespace {

constexpr const char* kWho = "render_highlight_html";

/// Appends text[begin, end) as HTML text or attribute value: & < > " ' and control characters
/// (other than tab and newline, which pre-wrap shows) as references; every other byte unchanged.
void append_escaped(std::string& out, const std::string& text, size_t begin, size_t end) {
  static const char* const kHex = "0123456789ABCDEF";
  for (size_t i = begin; i < end; ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default:
        if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7F) {
          out += "&#x";
          if (c >= 0x10) out += kHex[c >> 4];
          out += kHex[c & 0xF];
          out += ';';
        } else {
          out += static_cast<char>(c);
        }
    }
  }
}

void append_escaped(std::string& out, const std::string& text) { append_escaped(out, text, 0, text.size()); }

/// A UTF-8 continuation byte (10xxxxxx): a span boundary there would cut a character in two.
bool inside_character(const std::string& text, size_t at) {
  return at < text.size() && (static_cast<unsigned char>(text[at]) & 0xC0) == 0x80;
}

/// Per-document facts the page needs, computed while validating.
struct Marks {
  size_t read = 0;                    // tokens the model read
  std::vector<int> depth;             // per token: layers survived consecutively from the first
  std::vector<int64_t> kept_count;    // per layer: distinct positions kept
  std::vector<int64_t> marked_count;  // per layer i: tokens of depth > i
};

[[noreturn]] void fail(const HighlightDocument& doc, size_t index, const std::string& what) {
  throw std::invalid_argument(std::string(kWho) + ": document '" + doc.id + "' (#" + std::to_string(index) +
                              "): " + what);
}

std::string span_text(const HighlightToken& t) {
  return "[" + std::to_string(t.begin) + ", " + std::to_string(t.end) + ")";
}

Marks check_and_mark(const HighlightDocument& doc, size_t index) {
  const size_t n = doc.tokens.size();
  size_t previous_end = 0;
  for (size_t j = 0; j < n; ++j) {
    const HighlightToken& t = doc.tokens[j];
    if (t.begin > t.end || t.end > doc.text.size())
      fail(doc, index, "token " + std::to_string(j) + " has span " + span_text(t) + ", not within the text's " +
                           std::to_string(doc.text.size()) + " bytes");
    if (t.begin < previous_end)
      fail(doc, index, "token " + std::to_string(j) + " has span " + span_text(t) + ", which starts before the end " +
                           std::to_string(previous_end) + " of the previous token (spans must be in order and not overlap)");
    if (inside_character(doc.text, t.begin) || inside_character(doc.text, t.end))
      fail(doc, index, "token " + std::to_string(j) + " has span " + span_text(t) +
                           ", which cuts a UTF-8 character (spans are byte offsets on character boundaries)");
    previous_end = t.end;
  }
  if (doc.tokens_read < -1 || doc.tokens_read > static_cast<int64_t>(n))
    fail(doc, index, "tokens_read = " + std::to_string(doc.tokens_read) + ", must be -1 (all) or in [0, " +
                         std::to_string(n) + "] (the number of tokens)");
  if (!doc.layer_lengths.empty() && doc.layer_lengths.size() != doc.kept.size())
    fail(doc, index, "layer_lengths has " + std::to_string(doc.layer_lengths.size()) + " entries for " +
                         std::to_string(doc.kept.size()) + " pooling layers in kept (give one per layer, or none)");

  Marks marks;
  marks.read = doc.tokens_read < 0 ? n : static_cast<size_t>(doc.tokens_read);
  const size_t layers = doc.kept.size();
  // (layers, n) membership; depth then counts the leading layers that kept each token.
  std::vector<std::vector<char>> kept_by(layers, std::vector<char>(n, 0));
  marks.kept_count.assign(layers, 0);
  for (size_t i = 0; i < layers; ++i) {
    for (const int64_t p : doc.kept[i]) {
      if (p == -1) continue;  // padding row
      if (p < 0 || p >= static_cast<int64_t>(n))
        fail(doc, index, "pooling layer " + std::to_string(i + 1) + " keeps position " + std::to_string(p) +
                             ", outside [0, " + std::to_string(n) + ") (the document's tokens)");
      if (p >= static_cast<int64_t>(marks.read))
        fail(doc, index, "pooling layer " + std::to_string(i + 1) + " keeps position " + std::to_string(p) +
                             ", beyond the " + std::to_string(marks.read) + " tokens read (tokens_read)");
      if (!kept_by[i][p]) ++marks.kept_count[i];
      kept_by[i][p] = 1;
    }
  }
  marks.depth.assign(n, 0);
  marks.marked_count.assign(layers, 0);
  for (size_t j = 0; j < n; ++j) {
    int d = 0;
    while (d < static_cast<int>(layers) && kept_by[d][j]) ++marks.marked_count[d++];
    marks.depth[j] = d;
  }
  return marks;
}

/// One background per depth, from pale yellow (kept by the first layer only) to orange-red (kept
/// by all `layers`): the deeper, the more the model relied on the token.
std::string page_style(int layers) {
  std::string css =
      "body{font:15px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;color:#222;max-width:60em;"
      "margin:1em auto;padding:0 1em}\n"
      "nav{font-size:90%;margin-bottom:1em}\n"
      "section{border-top:2px solid #888;margin-top:2em}\n"
      "h2{font-size:120%}\n"
      ".s,.r,.t{white-space:pre-wrap;word-wrap:break-word;overflow-wrap:break-word}\n"
      ".s{background:#eef5ff;padding:.5em}\n"
      ".r{background:#f4f4f4;padding:.5em;color:#444}\n"
      ".t{font-family:Georgia,'Times New Roman',serif;line-height:1.6}\n"
      ".legend{font-size:90%}\n"
      ".x{color:#aaa}\n";
  for (int d = 1; d <= layers; ++d) {
    const double t = layers == 1 ? 0.0 : static_cast<double>(d - 1) / (layers - 1);
    const int hue = static_cast<int>(55 - 45 * t + 0.5);
    const int light = static_cast<int>(86 - 24 * t + 0.5);
    css += ".k" + std::to_string(d) + "{background:hsl(" + std::to_string(hue) + ",95%," + std::to_string(light) +
           "%)}\n";
  }
  return css;
}

void append_legend(std::string& out, const HighlightDocument& doc, const Marks& marks) {
  const size_t n = doc.tokens.size();
  if (doc.kept.empty()) {
    out += "<p class=\"legend\">No pooling layers: the model attends to every token it reads; nothing is marked.";
  } else {
    out += "<ul class=\"legend\">\n";
    for (size_t i = 0; i < doc.kept.size(); ++i) {
      out += "<li><span class=\"k" + std::to_string(i + 1) + "\">layer " + std::to_string(i + 1) + "</span>: " +
             std::to_string(marks.kept_count[i]) + " kept of " + std::to_string(marks.read) + " tokens read";
      if (!doc.layer_lengths.empty()) out += " (target length " + std::to_string(doc.layer_lengths[i]) + ")";
      out += "; " + std::to_string(marks.marked_count[i]) + " tokens marked</li>\n";
    }
    out += "</ul>\n<p class=\"legend\">A token's colour is the last pooling layer that kept it (counting the layers "
           "that kept it in a row from layer 1).";
  }
  if (marks.read < n)
    out += " <span class=\"x\">" + std::to_string(n - marks.read) + " of " + std::to_string(n) +
           " tokens not read</span> (beyond the model's maximum source length).";
  out += "</p>\n";
}

/// The text with runs of equal depth wrapped (see highlight.h); bytes outside runs as plain text.
void append_text(std::string& out, const HighlightDocument& doc, const Marks& marks) {
  const std::string& text = doc.text;
  size_t emitted = 0;  // text[0, emitted) is in `out`
  for (size_t j = 0; j < marks.read;) {
    const int d = marks.depth[j];
    size_t last = j;
    while (last + 1 < marks.read && marks.depth[last + 1] == d) ++last;
    const size_t begin = doc.tokens[j].begin, end = doc.tokens[last].end;
    if (d > 0 && end > begin) {
      append_escaped(out, text, emitted, begin);
      out += "<span class=\"k" + std::to_string(d) + "\" data-p=\"" + std::to_string(j) + "\">";
      append_escaped(out, text, begin, end);
      out += "</span>";
      emitted = end;
    }
    j = last + 1;
  }
  if (marks.read < doc.tokens.size()) {
    const size_t begin = doc.tokens[marks.read].begin;
    append_escaped(out, text, emitted, begin);
    out += "<span class=\"x\">";
    append_escaped(out, text, begin, text.size());
    out += "</span>";
  } else {
    append_escaped(out, text, emitted, text.size());
  }
}

}  // namespace

std::string render_highlight_html(const std::vector<HighlightDocument>& docs, const HighlightOptions& options) {
  // Validate every document before writing anything: an error never yields half a page.
  std::vector<Marks> marks;
  marks.reserve(docs.size());
  size_t layers = 0, text_bytes = 0;
  for (size_t i = 0; i < docs.size(); ++i) {
    marks.push_back(check_and_mark(docs[i], i));
    layers = std::max(layers, docs[i].kept.size());
    text_bytes += docs[i].text.size() + docs[i].summary.size() + docs[i].reference.size();
  }

  std::string out;
  out.reserve(4096 + text_bytes + text_bytes / 2);
  out += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>";
  append_escaped(out, options.title());
  out += "</title>\n<style>\n" + page_style(static_cast<int>(layers)) + "</style>\n</head>\n<body>\n<h1>";
  append_escaped(out, options.title());
  out += "</h1>\n";
  if (docs.size() > 1) {
    out += "<nav>";
    for (size_t i = 0; i < docs.size(); ++i) {
      out += i == 0 ? "" : " &middot; ";
      out += "<a href=\"#d" + std::to_string(i) + "\">";
      append_escaped(out, docs[i].id);
      out += "</a>";
    }
    out += "</nav>\n";
  }
  for (size_t i = 0; i < docs.size(); ++i) {
    const HighlightDocument& doc = docs[i];
    out += "<section id=\"d" + std::to_string(i) + "\">\n<h2>";
    append_escaped(out, doc.id);
    out += "</h2>\n<h3>Summary</h3>\n<div class=\"s\">";
    append_escaped(out, doc.summary);
    out += "</div>\n";
    if (!doc.reference.empty()) {
      out += "<h3>Reference</h3>\n<div class=\"r\">";
      append_escaped(out, doc.reference);
      out += "</div>\n";
    }
    out += "<h3>Document</h3>\n";
    append_legend(out, doc, marks[i]);
    out += "<div class=\"t\">";
    append_text(out, doc, marks[i]);
    out += "</div>\n</section>\n";
  }
  out += "</body>\n</html>\n";
  return out;
}

void write_highlight_html(const std::string& path, const std::vector<HighlightDocument>& docs,
                          const HighlightOptions& options) {
  detail::write_output_file("write_highlight_html", path, render_highlight_html(docs, options));
}

}  // namespace pyramidion
