// Private: the string forms of a closed set (an enum), declared once per enum as a table of
// (value, name) pairs. Every conversion of that enum (to_string, parsing at the boundary, JSON
// reading and writing, --help) goes through its table, so the names exist in one place.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "util/text.h"

namespace pyramidion {
namespace detail {

template <typename E>
using EnumNames = std::vector<std::pair<E, std::string>>;

template <typename E>
std::vector<std::string> names_of(const EnumNames<E>& names) {
  std::vector<std::string> out;
  for (const auto& [value, name] : names) out.push_back(name);
  return out;
}

/// True when `value` is one of the enum's values (not an integer cast to the enum).
template <typename E>
bool is_named(const EnumNames<E>& names, E value) {
  for (const auto& [v, name] : names)
    if (v == value) return true;
  return false;
}

/// The names, comma-separated: "relu, gelu".
template <typename E>
std::string joined_names(const EnumNames<E>& names) {
  std::string out;
  for (const auto& [v, name] : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

/// The name of `value`; std::invalid_argument "<type>: unknown value 7 (allowed: a, b)" for a value
/// outside the enum (a cast integer).
template <typename E>
const std::string& name_of(const EnumNames<E>& names, E value, const std::string& type) {
  for (const auto& [v, name] : names)
    if (v == value) return name;
  throw std::invalid_argument(type + ": unknown value " + std::to_string(static_cast<int>(value)) +
                              " (allowed: " + joined_names(names) + ")");
}

/// The value named `name`; std::invalid_argument "<what> = \"x\" must be one of \"a\", \"b\"".
template <typename E>
E value_of(const EnumNames<E>& names, const std::string& name, const std::string& what) {
  for (const auto& [value, n] : names)
    if (n == name) return value;
  throw std::invalid_argument(what + " = \"" + name + "\" must be one of " + quoted_list(names_of(names)));
}

}  // namespace detail
}  // namespace pyramidion
