// Tests of the highlighting page (src/eval/highlight.cpp): the page is well-formed HTML by an independent
// checker written here (tags, nesting, escaping, no script or external resource); the text content
// of each document reproduces its text byte for byte; exactly the kept tokens carry each depth
// (recomputed naively here); escaping of markup; truncated tokens; models without pooling; every
// error path; the atomic write; the size of a 6000-token document's page.
#include <pyramidion/highlight.h>

#include "support/test_support.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>
#include "util/output_file.h"

namespace {

namespace fs = std::filesystem;
using pyramidion::HighlightDocument;
using pyramidion::HighlightOptions;
using pyramidion::HighlightToken;
using pyramidion::render_highlight_html;
using pyramidion::write_highlight_html;

using pyramidion_test::message_of;

// ---------------------------------------------------------------------------------------------
// An independent HTML checker: the subset of HTML5 syntax a page may use, strictly.

struct Tag {
  std::string name;
  std::map<std::string, std::string> attrs;  // values unescaped
};

struct Event {
  enum Kind { kOpen, kClose, kText } kind;
  Tag tag;           // kOpen, kClose (name only)
  std::string text;  // kText: unescaped
};

bool is_void(const std::string& name) {
  static const std::set<std::string> kVoid = {"area", "base", "br",   "col",   "embed", "hr",  "img",
                                              "input", "link", "meta", "source", "track", "wbr"};
  return kVoid.count(name) > 0;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

/// Text or an attribute value: every '&' must start a character reference, and no raw '<' or '>'.
std::string unescape(const std::string& raw) {
  static const std::map<std::string, uint32_t> kNamed = {
      {"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}, {"middot", 0xB7}};
  std::string out;
  for (size_t i = 0; i < raw.size(); ++i) {
    const char c = raw[i];
    if (c == '<' || c == '>') throw std::runtime_error("raw '" + std::string(1, c) + "' in text: " + raw.substr(i, 40));
    if (c != '&') {
      out += c;
      continue;
    }
    const size_t semi = raw.find(';', i);
    if (semi == std::string::npos || semi - i > 10) throw std::runtime_error("bare '&' in text: " + raw.substr(i, 40));
    const std::string name = raw.substr(i + 1, semi - i - 1);
    uint32_t cp = 0;
    if (name.size() > 2 && name[0] == '#' && (name[1] == 'x' || name[1] == 'X')) {
      if (name.find_first_not_of("0123456789abcdefABCDEF", 2) != std::string::npos)
        throw std::runtime_error("bad reference &" + name + ";");
      cp = static_cast<uint32_t>(std::stoul(name.substr(2), nullptr, 16));
    } else if (name.size() > 1 && name[0] == '#') {
      if (name.find_first_not_of("0123456789", 1) != std::string::npos) throw std::runtime_error("bad reference &" + name + ";");
      cp = static_cast<uint32_t>(std::stoul(name.substr(1)));
    } else {
      const auto it = kNamed.find(name);
      if (it == kNamed.end()) throw std::runtime_error("unknown reference &" + name + ";");
      cp = it->second;
    }
    append_utf8(out, cp);
    i = semi;
  }
  return out;
}

bool is_name_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; }

/// Parses `html` into events; throws std::runtime_error describing the first violation: an unknown
/// construct, an unclosed or misnested element, an unescaped '<', '>' or '&' in text or attribute
/// values, a script element, an external resource.
std::vector<Event> parse_html(const std::string& html) {
  const std::string doctype = "<!DOCTYPE html>";
  if (html.compare(0, doctype.size(), doctype) != 0) throw std::runtime_error("no <!DOCTYPE html> first");
  std::vector<Event> events;
  std::vector<std::string> open;
  size_t i = doctype.size();
  auto read_name = [&]() {
    const size_t start = i;
    while (i < html.size() && is_name_char(html[i])) ++i;
    if (i == start) throw std::runtime_error("expected a tag or attribute name at byte " + std::to_string(start));
    return html.substr(start, i - start);
  };
  auto skip_spaces = [&]() {
    while (i < html.size() && (html[i] == ' ' || html[i] == '\n')) ++i;
  };
  while (i < html.size()) {
    if (html[i] != '<') {
      const size_t next = std::min(html.find('<', i), html.size());
      const std::string text = unescape(html.substr(i, next - i));
      if (open.empty() && text.find_first_not_of(" \n") != std::string::npos)
        throw std::runtime_error("text outside <html>: " + text.substr(0, 40));
      events.push_back({Event::kText, {}, text});
      i = next;
      continue;
    }
    ++i;
    if (html.compare(i, 3, "!--") == 0) {
      const size_t end = html.find("-->", i);
      if (end == std::string::npos) throw std::runtime_error("unclosed comment");
      i = end + 3;
    } else if (i < html.size() && html[i] == '/') {
      ++i;
      const std::string name = read_name();
      if (i >= html.size() || html[i] != '>') throw std::runtime_error("malformed </" + name);
      ++i;
      if (open.empty() || open.back() != name)
        throw std::runtime_error("</" + name + "> closes <" + (open.empty() ? std::string("nothing") : open.back()) + ">");
      open.pop_back();
      events.push_back({Event::kClose, {name, {}}, ""});
    } else {
      Tag tag;
      tag.name = read_name();
      if (tag.name == "script" || tag.name == "iframe" || tag.name == "object")
        throw std::runtime_error("<" + tag.name + "> element in the page");
      if (open.empty() && tag.name != "html") throw std::runtime_error("root element <" + tag.name + ">, not <html>");
      for (;;) {
        skip_spaces();
        if (i >= html.size()) throw std::runtime_error("unterminated <" + tag.name);
        if (html[i] == '>') {
          ++i;
          break;
        }
        const std::string attr = read_name();
        std::string value;
        if (i < html.size() && html[i] == '=') {
          if (++i >= html.size() || html[i] != '"') throw std::runtime_error("unquoted value of " + attr);
          const size_t end = html.find('"', i + 1);
          if (end == std::string::npos) throw std::runtime_error("unterminated value of " + attr);
          value = unescape(html.substr(i + 1, end - i - 1));
          i = end + 1;
        }
        if (!tag.attrs.emplace(attr, value).second) throw std::runtime_error("duplicate attribute " + attr);
        if ((attr == "href" && value.rfind("#", 0) != 0) || attr == "src" || attr.rfind("on", 0) == 0)
          throw std::runtime_error("attribute " + attr + "=\"" + value + "\" (external resource or script)");
      }
      events.push_back({Event::kOpen, tag, ""});
      if (!is_void(tag.name)) open.push_back(tag.name);
      if (tag.name == "style") {  // raw text up to </style>
        const size_t end = html.find("</style>", i);
        if (end == std::string::npos) throw std::runtime_error("unclosed <style>");
        const std::string css = html.substr(i, end - i);
        if (css.find('<') != std::string::npos || css.find("url(") != std::string::npos ||
            css.find("@import") != std::string::npos)
          throw std::runtime_error("style with markup or an external resource");
        events.push_back({Event::kText, {}, css});
        i = end;
      }
    }
  }
  if (!open.empty()) throw std::runtime_error("unclosed <" + open.back() + ">");
  return events;
}

std::vector<Event> parse_or_fail(const std::string& html) {
  try {
    return parse_html(html);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not well-formed HTML: " << e.what();
    return {};
  }
}

/// The text of one document as the page shows it: per byte, the class of the span around it ("" =
/// none) and, for spans with data-p, the byte where that span starts and its data-p.
struct ShownText {
  std::string text;
  std::vector<std::string> cls;
  std::vector<size_t> span_start;
  std::vector<int64_t> span_p;  // -1 = no data-p
};

/// The <div class="t"> of every section, in order. Fails on any element in it other than
/// non-nested spans.
std::vector<ShownText> shown_texts(const std::vector<Event>& events) {
  std::vector<ShownText> texts;
  bool in_text = false, in_span = false;
  std::string cls;
  size_t start = 0;
  int64_t p = -1;
  for (const Event& e : events) {
    if (!in_text) {
      if (e.kind == Event::kOpen && e.tag.name == "div" && e.tag.attrs.count("class") && e.tag.attrs.at("class") == "t") {
        in_text = true;
        texts.emplace_back();
      }
      continue;
    }
    ShownText& t = texts.back();
    if (e.kind == Event::kText) {
      t.text += e.text;
      for (size_t b = 0; b < e.text.size(); ++b) {
        t.cls.push_back(in_span ? cls : "");
        t.span_start.push_back(in_span ? start : 0);
        t.span_p.push_back(in_span ? p : -1);
      }
    } else if (e.kind == Event::kOpen) {
      EXPECT_EQ(e.tag.name, "span") << "only spans in the text";
      EXPECT_FALSE(in_span) << "nested spans in the text";
      in_span = true;
      cls = e.tag.attrs.count("class") ? e.tag.attrs.at("class") : "";
      start = t.text.size();
      p = e.tag.attrs.count("data-p") ? std::stoll(e.tag.attrs.at("data-p")) : -1;
    } else if (e.tag.name == "span") {
      EXPECT_LT(start, t.text.size()) << "an empty span at byte " << start;
      in_span = false;
    } else {
      EXPECT_EQ(e.tag.name, "div");
      in_text = false;
    }
  }
  return texts;
}

/// All text of the page outside <style>, unescaped.
std::string all_text(const std::vector<Event>& events) {
  std::string out;
  bool in_style = false;
  for (const Event& e : events) {
    if (e.kind == Event::kOpen && e.tag.name == "style") in_style = true;
    if (e.kind == Event::kClose && e.tag.name == "style") in_style = false;
    if (e.kind == Event::kText && !in_style) out += e.text;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Documents and the expected marks, computed naively.

size_t tokens_read(const HighlightDocument& doc) {
  return doc.tokens_read < 0 ? doc.tokens.size() : static_cast<size_t>(doc.tokens_read);
}

/// Layers that kept position j consecutively from the first (the documented depth).
int expected_depth(const HighlightDocument& doc, size_t j) {
  int d = 0;
  for (const auto& layer : doc.kept) {
    if (std::find(layer.begin(), layer.end(), static_cast<int64_t>(j)) == layer.end()) break;
    ++d;
  }
  return d;
}

std::string depth_class(int d) { return d == 0 ? "" : "k" + std::to_string(d); }

/// Checks the shown text against `doc`: the same bytes; each token's bytes in the span of its
/// depth (unread tokens in "x"); bytes between tokens marked only inside a run of one depth; each
/// span's data-p naming the token it starts at.
void expect_marks(const HighlightDocument& doc, const ShownText& shown) {
  ASSERT_EQ(shown.text, doc.text) << "text content of document '" << doc.id << "'";
  const size_t n = doc.tokens.size(), read = tokens_read(doc);
  std::vector<int> depth(n);
  for (size_t j = 0; j < n; ++j) depth[j] = expected_depth(doc, j);
  const size_t unread_from = read < n ? doc.tokens[read].begin : doc.text.size();
  std::vector<char> in_token(doc.text.size(), 0);
  for (size_t j = 0; j < n; ++j) {
    const std::string expected = j >= read ? "x" : depth_class(depth[j]);
    for (size_t b = doc.tokens[j].begin; b < doc.tokens[j].end; ++b) {
      in_token[b] = 1;
      ASSERT_EQ(shown.cls[b], expected) << "document '" << doc.id << "', token " << j << ", byte " << b;
    }
  }
  for (size_t b = 0; b < doc.text.size(); ++b) {
    if (in_token[b]) continue;
    std::string expected;
    if (b >= unread_from) {
      expected = "x";
    } else {
      // The tokens around this byte: the last one ending at or before it, the first one starting after it.
      int64_t before = -1, after = -1;
      for (size_t j = 0; j < n; ++j) {
        if (doc.tokens[j].end <= b) before = static_cast<int64_t>(j);
        if (doc.tokens[j].begin > b && after < 0) after = static_cast<int64_t>(j);
      }
      if (before >= 0 && after >= 0 && static_cast<size_t>(after) < read && depth[before] == depth[after])
        expected = depth_class(depth[before]);
    }
    ASSERT_EQ(shown.cls[b], expected) << "document '" << doc.id << "', byte " << b << " between tokens";
  }
  for (size_t b = 0; b < shown.text.size(); ++b) {
    if (shown.cls[b].empty() || shown.cls[b] == "x") {
      EXPECT_EQ(shown.span_p[b], -1) << "byte " << b;
      continue;
    }
    if (shown.span_start[b] != b) continue;
    const int64_t p = shown.span_p[b];
    ASSERT_GE(p, 0) << "a marked span without data-p at byte " << b;
    ASSERT_LT(p, static_cast<int64_t>(read));
    EXPECT_EQ(doc.tokens[p].begin, b) << "data-p " << p << " of the span at byte " << b;
    EXPECT_EQ(depth_class(depth[p]), shown.cls[b]) << "data-p " << p;
  }
}

const std::vector<std::string>& words() {
  static const std::vector<std::string> kWords = {
      "the",  "model",     "<S>",   "pooling",        "na\xC3\xAFve", "donn\xC3\xA9" "es", "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E",
      "\xF0\x9F\x98\x80", "a&b", "\"quoted\"", "it's", "x<y>z", "&amp;", "<script>alert(1)</script>",
      "\xE2\x82\xAC" "5",  "summary", "attention", "top-k",  "tab\there", "ctl\x01\x7F"};
  return kWords;
}

/// A document of about `n_words` words: spans include the leading space (as sentencepiece's do),
/// some words split in two tokens at a character boundary, some newlines with an empty token (a
/// lone "\u2581"), some double spaces in no span. Layers keep nested random subsets of the tokens
/// read (halving, then thirds, ...), padded with -1 and shuffled.
HighlightDocument make_document(const std::string& id, int n_words, int layers, std::mt19937& rng,
                                int64_t read_limit = -1) {
  HighlightDocument doc;
  doc.id = id;
  doc.summary = "A summary of " + id + " with <S> markers & \"quotes\".";
  const auto& vocab = words();
  for (int w = 0; w < n_words; ++w) {
    const std::string& word = vocab[rng() % vocab.size()];
    const unsigned r = rng() % 10;
    if (r == 0) {
      doc.text += "\n";
      if (rng() % 2) doc.tokens.push_back({doc.text.size(), doc.text.size()});
    } else if (r == 1) {
      doc.text += "  ";  // normalization drops it: in no span
    }
    size_t begin = doc.text.size();
    doc.text += (r == 0 || r == 1 || w == 0) ? word : " " + word;
    std::vector<size_t> cuts;  // character boundaries inside the word
    for (size_t b = begin + 1; b < doc.text.size(); ++b)
      if ((static_cast<unsigned char>(doc.text[b]) & 0xC0) != 0x80) cuts.push_back(b);
    if (!cuts.empty() && rng() % 3 == 0) {
      const size_t cut = cuts[rng() % cuts.size()];
      doc.tokens.push_back({begin, cut});
      begin = cut;
    }
    doc.tokens.push_back({begin, doc.text.size()});
  }
  doc.text += "\n";
  doc.tokens_read = read_limit;
  const size_t read = tokens_read(doc);
  std::vector<int64_t> pool(read);
  for (size_t j = 0; j < read; ++j) pool[j] = static_cast<int64_t>(j);
  for (int i = 0; i < layers; ++i) {
    std::shuffle(pool.begin(), pool.end(), rng);
    pool.resize(pool.size() / (i + 2));
    std::vector<int64_t> layer = pool;
    layer.insert(layer.end(), {-1, -1, -1});
    std::shuffle(layer.begin(), layer.end(), rng);
    doc.kept.push_back(layer);
    doc.layer_lengths.push_back(static_cast<int64_t>(layer.size()));
  }
  return doc;
}

void expect_page(const std::vector<HighlightDocument>& docs) {
  const std::string html = render_highlight_html(docs);
  const std::vector<Event> events = parse_or_fail(html);
  ASSERT_FALSE(events.empty());
  const std::vector<ShownText> shown = shown_texts(events);
  ASSERT_EQ(shown.size(), docs.size());
  for (size_t i = 0; i < docs.size(); ++i) expect_marks(docs[i], shown[i]);
}

// ---------------------------------------------------------------------------------------------

TEST(HighlightTest, PageIsWellFormedHtmlWithoutScriptOrExternalResources) {
  std::mt19937 rng(1);
  std::vector<HighlightDocument> docs;
  for (int i = 0; i < 5; ++i) docs.push_back(make_document("doc-" + std::to_string(i), 80, i % 4, rng));
  docs[2].reference = "The <b>reference</b> & more";
  const std::string html = render_highlight_html(docs);
  const std::vector<Event> events = parse_or_fail(html);
  ASSERT_FALSE(events.empty());
  // <html> holds <head> (with meta charset and title) then <body>.
  std::vector<std::string> top;
  int depth = 0;
  for (const Event& e : events) {
    if (e.kind == Event::kOpen && depth == 1) top.push_back(e.tag.name);
    if (e.kind == Event::kOpen && !is_void(e.tag.name)) ++depth;
    if (e.kind == Event::kClose) --depth;
  }
  EXPECT_EQ(top, (std::vector<std::string>{"head", "body"}));
  EXPECT_NE(html.find("<meta charset=\"utf-8\">"), std::string::npos);
  EXPECT_NE(html.find("white-space:pre-wrap"), std::string::npos);
  // The checker itself rejects what it must.
  EXPECT_ANY_THROW(parse_html("<!DOCTYPE html><html><body><div></span></body></html>"));
  EXPECT_ANY_THROW(parse_html("<!DOCTYPE html><html><body>a < b</body></html>"));
  EXPECT_ANY_THROW(parse_html("<!DOCTYPE html><html><body>a & b</body></html>"));
  EXPECT_ANY_THROW(parse_html("<!DOCTYPE html><html><body><p>open</body></html>"));
  EXPECT_ANY_THROW(parse_html("<!DOCTYPE html><html><body><script>x</script></body></html>"));
  EXPECT_NO_THROW(parse_html("<!DOCTYPE html><html><head><meta charset=\"utf-8\"></head><body>a &amp; b</body></html>"));
}

TEST(HighlightTest, MarksExactlyTheKeptTokensAndTextRoundTrips) {
  std::mt19937 rng(2);
  std::vector<HighlightDocument> docs;
  for (int layers = 1; layers <= 4; ++layers)
    docs.push_back(make_document("layers-" + std::to_string(layers), 400, layers, rng));
  expect_page(docs);
}

TEST(HighlightTest, EveryTokenKeptOrNoneKept) {
  std::mt19937 rng(3);
  HighlightDocument all = make_document("all", 50, 0, rng);
  HighlightDocument none = all;
  none.id = "none";
  std::vector<int64_t> every;
  for (size_t j = 0; j < all.tokens.size(); ++j) every.push_back(static_cast<int64_t>(j));
  all.kept = {every, every};
  none.kept = {{}, {-1, -1}};
  expect_page({all, none});
  const std::string html = render_highlight_html({all});
  // Every token has depth 2: one run, hence one span.
  size_t spans = 0;
  for (size_t at = html.find("class=\"k2\" data-p"); at != std::string::npos; at = html.find("class=\"k2\" data-p", at + 1))
    ++spans;
  EXPECT_EQ(spans, 1u);
  EXPECT_NE(html.find(std::to_string(all.tokens.size()) + " kept of " + std::to_string(all.tokens.size()) + " tokens read"),
            std::string::npos);
}

TEST(HighlightTest, NonNestedLayersMarkTheConsecutiveDepth) {
  HighlightDocument doc;
  doc.id = "non-nested";
  doc.text = "a b c d";
  doc.tokens = {{0, 1}, {1, 3}, {3, 5}, {5, 7}};
  doc.kept = {{0, 1}, {1, 2}, {1, 2}};  // token 2 kept by layers 2 and 3 but not by layer 1
  expect_page({doc});
  const std::string html = render_highlight_html({doc});
  EXPECT_NE(html.find("<span class=\"k1\" data-p=\"0\">a</span><span class=\"k3\" data-p=\"1\"> b</span> c d"),
            std::string::npos)
      << html;
  // Layer 2 kept 2 positions, but only 1 token survived layers 1 and 2.
  EXPECT_NE(html.find("2 kept of 4 tokens read; 1 tokens marked"), std::string::npos) << html;
}

TEST(HighlightTest, EscapesMarkupEverywhere) {
  HighlightDocument doc;
  doc.id = "<script>alert('id')</script>";
  doc.text = "<script>alert(\"x\")</script> &amp; it's <S> a&b \x01";
  for (size_t b = 0; b < doc.text.size(); b += 3) doc.tokens.push_back({b, std::min(b + 3, doc.text.size())});
  doc.kept = {{0, 1, 2, 5, 6, 9}, {1, 5}};
  doc.summary = "<b>bold</b> &amp; 'single' \"double\"";
  doc.reference = "</div></section><script>";
  HighlightOptions options;
  options.title("<title> & \"title\"");
  const std::string html = render_highlight_html({doc}, options);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<b>"), std::string::npos);
  EXPECT_EQ(html.find("<S>"), std::string::npos);
  EXPECT_EQ(html.find("</div></section><script>"), std::string::npos);
  EXPECT_NE(html.find("&amp;amp;"), std::string::npos);
  EXPECT_NE(html.find("&#39;single&#39; &quot;double&quot;"), std::string::npos);
  const std::vector<Event> events = parse_or_fail(html);
  const std::string text = all_text(events);
  for (const std::string& s : {doc.id, doc.summary, doc.reference, options.title()})
    EXPECT_NE(text.find(s), std::string::npos) << s;
  const std::vector<ShownText> shown = shown_texts(events);
  ASSERT_EQ(shown.size(), 1u);
  expect_marks(doc, shown[0]);
}

TEST(HighlightTest, TruncatedTokensAreMarkedNotRead) {
  std::mt19937 rng(4);
  HighlightDocument doc = make_document("truncated", 300, 3, rng, 150);
  ASSERT_GT(doc.tokens.size(), 160u);
  expect_page({doc});  // every token from position 150 on is in the "x" span
  const std::string html = render_highlight_html({doc});
  EXPECT_NE(html.find(std::to_string(doc.tokens.size() - 150) + " of " + std::to_string(doc.tokens.size()) +
                      " tokens not read"),
            std::string::npos);
  EXPECT_NE(html.find("kept of 150 tokens read"), std::string::npos);
  HighlightDocument nothing_read = make_document("nothing-read", 20, 0, rng, 0);
  expect_page({nothing_read});
}

TEST(HighlightTest, DocumentWithoutPoolingLayersHasNoMarks) {
  std::mt19937 rng(5);
  HighlightDocument doc = make_document("blockwise", 100, 0, rng);
  ASSERT_TRUE(doc.kept.empty());
  const std::string html = render_highlight_html({doc});
  EXPECT_NE(html.find("No pooling layers"), std::string::npos);
  EXPECT_EQ(html.find("<span class=\"k"), std::string::npos);
  EXPECT_EQ(html.find(".k1{"), std::string::npos);  // no depth styles at all
  expect_page({doc});
  HighlightDocument empty;  // no text at all
  empty.id = "empty";
  expect_page({empty});
  expect_page({});
}

TEST(HighlightTest, InvalidInputNamesTheDocumentAndValue) {
  HighlightDocument good;
  good.id = "paper-17";
  good.text = "caf\xC3\xA9 au lait";  // "café": bytes 3-4 are one character
  good.tokens = {{0, 5}, {5, 8}, {8, 13}};
  good.kept = {{0, 2, -1}};
  EXPECT_NO_THROW(render_highlight_html({good}));
  auto error = [&](auto&& change) {
    HighlightDocument doc = good;
    change(doc);
    return message_of<std::invalid_argument>([&] { render_highlight_html({good, doc}); });
  };
  auto expect_error = [&](const std::string& message, const std::string& value) {
    EXPECT_NE(message.find("document 'paper-17' (#1)"), std::string::npos) << message;
    EXPECT_NE(message.find(value), std::string::npos) << message;
  };
  expect_error(error([](HighlightDocument& d) { d.tokens[2].end = 14; }), "[8, 14)");
  expect_error(error([](HighlightDocument& d) { d.tokens[1] = {6, 5}; }), "[6, 5)");
  expect_error(error([](HighlightDocument& d) { d.tokens[1].begin = 4; }), "[4, 8)");  // overlaps token 0
  expect_error(error([](HighlightDocument& d) { d.tokens[2] = {0, 2}; }), "[0, 2)");   // decreasing
  expect_error(error([](HighlightDocument& d) { d.tokens[0].end = 4; }), "UTF-8");     // cuts "é"
  expect_error(error([](HighlightDocument& d) { d.kept[0].push_back(3); }), "position 3");
  expect_error(error([](HighlightDocument& d) { d.kept[0].push_back(-2); }), "position -2");
  expect_error(error([](HighlightDocument& d) { d.kept.push_back({7}); }), "layer 2 keeps position 7");
  expect_error(error([](HighlightDocument& d) { d.tokens_read = 4; }), "tokens_read = 4");
  expect_error(error([](HighlightDocument& d) { d.tokens_read = -2; }), "tokens_read = -2");
  expect_error(error([](HighlightDocument& d) { d.tokens_read = 2; }), "position 2, beyond the 2 tokens read");
  expect_error(error([](HighlightDocument& d) { d.layer_lengths = {4, 2}; }), "layer_lengths has 2 entries");
}

TEST(HighlightTest, WritesAtomicallyAndNamesThePathOnError) {
  std::mt19937 rng(6);
  const std::vector<HighlightDocument> docs = {make_document("written", 50, 2, rng)};
  const fs::path dir = fs::temp_directory_path() / ("pyramidion_highlight_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "page.html").string();
  write_highlight_html(path, docs);
  std::ifstream in(path, std::ios::binary);
  std::stringstream read;
  read << in.rdbuf();
  EXPECT_EQ(read.str(), render_highlight_html(docs));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);  // no temporary left
  const std::string missing = (dir / "no" / "such" / "dir" / "page.html").string();
  const std::string message = message_of<std::runtime_error>([&] { write_highlight_html(missing, docs); });
  EXPECT_NE(message.find(missing), std::string::npos) << message;
  pyramidion::detail::remove_tree(fs::path(dir).string());
}

TEST(HighlightTest, PageOfLargeDocumentStaysSmall) {
  // A 6000-token document with 3 layers keeping random halves, thirds, quarters (about 6000 ->
  // 3000 -> 1000 -> 250, the worst case for merging runs): the markup adds at most a span per token
  // kept by the first layer, not one per token.
  std::mt19937 rng(7);
  HighlightDocument doc = make_document("large", 4600, 3, rng);
  doc.tokens.resize(std::min<size_t>(doc.tokens.size(), 6000));
  for (auto& layer : doc.kept)
    layer.erase(std::remove_if(layer.begin(), layer.end(), [&](int64_t p) { return p >= 6000; }), layer.end());
  ASSERT_EQ(doc.tokens.size(), 6000u);
  const std::string html = render_highlight_html({doc});
  std::cout << "[          ] 6000-token document: text " << doc.text.size() << " bytes, page " << html.size()
            << " bytes\n";
  size_t escaped = 0;  // the text's size once escaped
  for (const char c : doc.text) {
    switch (c) {
      case '&': escaped += 5; break;              // &amp;
      case '<': case '>': escaped += 4; break;    // &lt; &gt;
      case '"': escaped += 6; break;              // &quot;
      case '\'': escaped += 5; break;             // &#39;
      default: escaped += (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') || c == 0x7F ? 5 : 1;
    }
  }
  const size_t first_layer = std::count_if(doc.kept[0].begin(), doc.kept[0].end(), [](int64_t p) { return p >= 0; });
  EXPECT_LT(html.size(), escaped + 40 * first_layer + 4096);
  expect_page({doc});
}

}  // namespace
