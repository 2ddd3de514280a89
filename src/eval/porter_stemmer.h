// Private: the Porter stemmer as ROUGE scoring uses it (src/eval/rouge.cpp).
//
// M.F. Porter, "An algorithm for suffix stripping", Program 14(3), 1980, with the changes that
// NLTK's PorterStemmer makes in its default mode (NLTK_EXTENSIONS), because that is the stemmer of
// the `rouge-score` package whose numbers we reproduce. Written from the paper and NLTK's
// documented behaviour; verified word for word against NLTK (docs/rouge.md).
#pragma once

#include <string>

namespace pyramidion {
namespace detail {

/// The stem of a lowercase word of ASCII letters and digits (a ROUGE token). Words of one or two
/// characters are returned unchanged. Other characters are treated as consonants; callers pass
/// only [a-z0-9].
std::string porter_stem(const std::string& word);

}  // namespace detail
}  // namespace pyramidion
