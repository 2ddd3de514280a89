// The Porter stemmer (see src/eval/porter_stemmer.h). Section numbers refer to Porter (1980); "NLTK"
// marks where NLTK's default mode departs from the paper, which rouge-score inherits.
#include "eval/porter_stemmer.h"

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace pyramidion {
namespace detail {
namespace {

bool is_vowel_letter(char c) { return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u'; }

// Section 2: a consonant is a letter other than a, e, i, o, u, and other than a y preceded by a
// consonant. A run of y's therefore alternates; walk back to where the run starts.
bool consonant(const std::string& w, size_t i) {
  size_t start = i;
  while (start > 0 && w[start] == 'y') --start;
  bool c = w[start] == 'y' ? true : !is_vowel_letter(w[start]);
  for (size_t k = start + 1; k <= i; ++k) c = !c;
  return c;
}

// Section 2: m in [C](VC)^m[V] for the first n letters, i.e. the number of vowel -> consonant
// transitions.
int measure(const std::string& w, size_t n) {
  int m = 0;
  bool previous_consonant = true;
  for (size_t i = 0; i < n; ++i) {
    bool c;
    if (is_vowel_letter(w[i]))
      c = false;
    else if (w[i] == 'y')
      c = i == 0 || !previous_consonant;
    else
      c = true;
    if (c && i > 0 && !previous_consonant) ++m;
    previous_consonant = c;
  }
  return m;
}

// *v*: the first n letters contain a vowel.
bool has_vowel(const std::string& w, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (!consonant(w, i)) return true;
  return false;
}

// *d: the first n letters end with a double consonant.
bool ends_double_consonant(const std::string& w, size_t n) {
  return n >= 2 && w[n - 1] == w[n - 2] && consonant(w, n - 1);
}

// *o: the first n letters end consonant-vowel-consonant, the last not w, x or y. NLTK: also a
// two-letter vowel-consonant stem ("at" -> "ate" in step 1b).
bool ends_cvc(const std::string& w, size_t n) {
  if (n >= 3 && consonant(w, n - 3) && !consonant(w, n - 2) && consonant(w, n - 1)) {
    const char last = w[n - 1];
    return last != 'w' && last != 'x' && last != 'y';
  }
  return n == 2 && !consonant(w, 0) && consonant(w, 1);
}

bool ends_with(const std::string& w, std::string_view suffix) {
  return w.size() >= suffix.size() && w.compare(w.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void replace_end(std::string& w, size_t stem_length, std::string_view replacement) {
  w.erase(stem_length);
  w.append(replacement.data(), replacement.size());
}

enum class Condition {
  none,
  m_gt_0,           // (m>0) on the stem
  m_gt_1,           // (m>1)
  m_gt_1_s_or_t,    // (m>1 and (*S or *T)), step 4's ION
  m_gt_0_keep_last  // NLTK's LOGI -> LOG: (m>0) on the stem with the suffix's "l" kept
};

struct Rule {
  std::string_view suffix;
  std::string_view replacement;
  Condition condition;
};

bool holds(const std::string& w, size_t stem, Condition condition) {
  switch (condition) {
    case Condition::none: return true;
    case Condition::m_gt_0: return measure(w, stem) > 0;
    case Condition::m_gt_1: return measure(w, stem) > 1;
    case Condition::m_gt_1_s_or_t:
      return measure(w, stem) > 1 && (w[stem - 1] == 's' || w[stem - 1] == 't');
    case Condition::m_gt_0_keep_last: return measure(w, stem + 1) > 0;
  }
  return false;
}

// Within a step the first rule whose suffix matches decides: its condition either holds and the
// suffix is replaced, or it fails and the step leaves the word alone. The tables below list a
// longer suffix before any shorter one it ends with, which is the paper's longest-match rule.
void apply_first_match(std::string& w, std::initializer_list<Rule> rules) {
  for (const Rule& rule : rules) {
    if (!ends_with(w, rule.suffix)) continue;
    const size_t stem = w.size() - rule.suffix.size();
    if (holds(w, stem, rule.condition)) replace_end(w, stem, rule.replacement);
    return;
  }
}

// Step 1a: plurals.
void step1a(std::string& w) {
  if (w.size() == 4 && ends_with(w, "ies")) {  // NLTK: "dies" -> "die", "ties" -> "tie"
    replace_end(w, 1, "ie");
    return;
  }
  apply_first_match(w, {{"sses", "ss", Condition::none},
                        {"ies", "i", Condition::none},
                        {"ss", "ss", Condition::none},
                        {"s", "", Condition::none}});
}

// Step 1b: past tenses and gerunds, then the tidying of what is left.
void step1b(std::string& w) {
  if (ends_with(w, "ied")) {  // NLTK: "died" -> "die", "cried" -> "cri" with no vowel check
    replace_end(w, w.size() - 3, w.size() == 4 ? "ie" : "i");
    return;
  }
  if (ends_with(w, "eed")) {
    if (measure(w, w.size() - 3) > 0) w.pop_back();  // (m>0) EED -> EE
    return;
  }
  size_t stem;
  if (ends_with(w, "ed") && has_vowel(w, w.size() - 2))
    stem = w.size() - 2;
  else if (ends_with(w, "ing") && has_vowel(w, w.size() - 3))
    stem = w.size() - 3;
  else
    return;
  w.erase(stem);
  if (ends_with(w, "at") || ends_with(w, "bl") || ends_with(w, "iz")) {
    w.push_back('e');
  } else if (ends_double_consonant(w, w.size())) {
    const char last = w.back();
    if (last != 'l' && last != 's' && last != 'z') w.pop_back();
  } else if (measure(w, w.size()) == 1 && ends_cvc(w, w.size())) {
    w.push_back('e');
  }
}

// Step 1c: NLTK turns a final y into i only after a consonant that is not the whole stem
// ("happy" -> "happi", "cry" -> "cri", but "enjoy", "by" stay); the paper asks for *v* instead.
void step1c(std::string& w) {
  if (w.size() > 2 && w.back() == 'y' && consonant(w, w.size() - 2)) w.back() = 'i';
}

// Step 2: double suffixes to single ones, (m>0).
void step2(std::string& w) {
  // NLTK applies ALLI -> AL before the table (the paper has it after BLI) and then runs the
  // step again on the result.
  if (ends_with(w, "alli") && measure(w, w.size() - 4) > 0) {
    replace_end(w, w.size() - 4, "al");
    step2(w);
    return;
  }
  constexpr Condition m0 = Condition::m_gt_0;
  apply_first_match(w, {{"ational", "ate", m0}, {"tional", "tion", m0}, {"enci", "ence", m0},
                        {"anci", "ance", m0},   {"izer", "ize", m0},    {"bli", "ble", m0},
                        {"alli", "al", m0},     {"entli", "ent", m0},   {"eli", "e", m0},
                        {"ousli", "ous", m0},   {"ization", "ize", m0}, {"ation", "ate", m0},
                        {"ator", "ate", m0},    {"alism", "al", m0},    {"iveness", "ive", m0},
                        {"fulness", "ful", m0}, {"ousness", "ous", m0}, {"aliti", "al", m0},
                        {"iviti", "ive", m0},   {"biliti", "ble", m0},
                        // NLTK additions; BLI -> BLE above replaces the paper's ABLI -> ABLE.
                        {"fulli", "ful", m0},   {"logi", "log", Condition::m_gt_0_keep_last}});
}

// Step 3: -ic-, -full, -ness etc., (m>0).
void step3(std::string& w) {
  constexpr Condition m0 = Condition::m_gt_0;
  apply_first_match(w, {{"icate", "ic", m0}, {"ative", "", m0}, {"alize", "al", m0}, {"iciti", "ic", m0},
                        {"ical", "ic", m0}, {"ful", "", m0}, {"ness", "", m0}});
}

// Step 4: single suffixes, (m>1).
void step4(std::string& w) {
  constexpr Condition m1 = Condition::m_gt_1;
  apply_first_match(w, {{"al", "", m1},   {"ance", "", m1},  {"ence", "", m1}, {"er", "", m1},
                        {"ic", "", m1},   {"able", "", m1},  {"ible", "", m1}, {"ant", "", m1},
                        {"ement", "", m1}, {"ment", "", m1}, {"ent", "", m1},
                        {"ion", "", Condition::m_gt_1_s_or_t},
                        {"ou", "", m1},   {"ism", "", m1},   {"ate", "", m1},  {"iti", "", m1},
                        {"ous", "", m1},  {"ive", "", m1},   {"ize", "", m1}});
}

// Step 5a: a final e; step 5b: a final ll.
void step5(std::string& w) {
  if (ends_with(w, "e")) {
    const size_t stem = w.size() - 1;
    const int m = measure(w, stem);
    if (m > 1 || (m == 1 && !ends_cvc(w, stem))) w.pop_back();
  }
  if (ends_with(w, "ll") && measure(w, w.size() - 1) > 1) w.pop_back();
}

// NLTK's irregular forms, looked up before any rule.
const std::pair<std::string_view, std::string_view> kIrregular[] = {
    {"skies", "sky"},        {"sky", "sky"},         {"dying", "die"},         {"lying", "lie"},
    {"tying", "tie"},        {"news", "news"},       {"innings", "inning"},    {"inning", "inning"},
    {"outings", "outing"},   {"outing", "outing"},   {"cannings", "canning"},  {"canning", "canning"},
    {"howe", "howe"},        {"proceed", "proceed"}, {"exceed", "exceed"},     {"succeed", "succeed"}};

}  // namespace

std::string porter_stem(const std::string& word) {
  for (const auto& [form, stem] : kIrregular)
    if (word == form) return std::string(stem);
  if (word.size() <= 2) return word;  // NLTK; the paper does not say
  std::string w = word;
  step1a(w);
  step1b(w);
  step1c(w);
  step2(w);
  step3(w);
  step4(w);
  step5(w);
  return w;
}

}  // namespace detail
}  // namespace pyramidion
