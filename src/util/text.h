// Private: the text formats every layer prints numbers and lists in (messages, progress lines,
// reports), so that a value reads the same wherever it appears.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace pyramidion {
namespace detail {

/// The shortest decimal that reads back as the same double ("0.1", not "0.100000"); "nan", "inf".
std::string format_double(double v);
/// `v` with `digits` digits after the point ("3.14").
std::string format_fixed(double v, int digits);
/// `v` as "%.3e" ("7.297e-04").
std::string format_scientific(double v);
/// A duration as "1h05m" (from an hour) or "2m07s"; "?" for a negative or non-finite value.
std::string format_duration(double seconds);
/// A list of integers as "[1, 2, 3]" (tensor sizes, pooling schedules).
std::string format_list(const std::vector<int64_t>& values);
/// A data file's name in messages: "<stdin>" for "-" (standard input), else the path.
std::string display_path(const std::string& path);
/// `items` quoted and comma-separated: "\"a\", \"b\"".
std::string quoted_list(const std::vector<std::string>& items);
/// True when `s` holds only ASCII whitespace (" \t\r\n\f\v"), or nothing.
bool is_blank(const std::string& s);
/// Offset of the first byte of `s` that does not belong to well-formed UTF-8 (RFC 3629: no
/// overlong forms, no surrogates, nothing above U+10FFFF), or std::string::npos.
size_t invalid_utf8_offset(const std::string& s);
/// Levenshtein distance, for "did you mean" suggestions.
size_t edit_distance(const std::string& a, const std::string& b);

}  // namespace detail
}  // namespace pyramidion
