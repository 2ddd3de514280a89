// Private: strict reading of JSON configuration objects (ModelConfig, TrainConfig, generation.json).
// Every error names the owner ("ModelConfig"), the key and the offending value.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "util/enum_names.h"

namespace pyramidion {
namespace detail {

using json = nlohmann::json;

/// A JSON value for an error message, shortened: `1.5 (number)`.
std::string describe_json(const json& v);

/// Parses JSON text; rejects syntax errors and duplicate keys (which nlohmann_json would resolve
/// silently to the last value) with std::invalid_argument "<owner>: ...".
json parse_strict(const std::string& owner, const std::string& text);

/// Throws std::invalid_argument "<owner>: unknown key '<prefix><key>' (did you mean ...?); known
/// keys: ..." for the first key of `object` not in `known`. `nested`: keys of nested objects
/// ("pooler.base") that a user may have put at this level.
void reject_unknown_keys(const std::string& owner, const json& object, const std::string& prefix,
                         const std::vector<std::string>& known, const std::vector<std::string>& nested = {});

/// "<owner>.<field> = <value> <requirement>" as std::invalid_argument.
[[noreturn]] void fail_field(const std::string& owner, const std::string& field, const std::string& value,
                             const std::string& requirement);

/// Reads the fields of one JSON object; a key that is absent leaves the field at its default.
/// Mistyped values throw std::invalid_argument naming "<owner>.<prefix><key>".
class ObjectReader {
 public:
  ObjectReader(const json& object, std::string owner, std::string prefix = "")
      : object_(object), owner_(std::move(owner)), prefix_(std::move(prefix)) {}

  void read(const char* key, int64_t& out) const;
  void read(const char* key, uint64_t& out) const;
  void read(const char* key, double& out) const;
  void read(const char* key, bool& out) const;
  void read(const char* key, std::string& out) const;
  void read(const char* key, std::vector<int64_t>& out) const;
  void read(const char* key, std::vector<double>& out) const;
  void read(const char* key, std::vector<std::string>& out) const;
  /// One of the names of `names`.
  template <typename Enum>
  void read(const char* key, Enum& out, const EnumNames<Enum>& names) const {
    const json* v = find(key);
    if (!v) return;
    const std::string allowed = quoted_list(names_of(names));
    if (!v->is_string()) wrong_type(key, *v, "one of the strings " + allowed);
    for (const auto& [value, name] : names) {
      if (v->get<std::string>() == name) {
        out = value;
        return;
      }
    }
    fail_field(owner_, prefix_ + key, v->dump(), "must be one of " + allowed);
  }
  const json* find(const char* key) const;
  int64_t to_int(const std::string& field, const json& v) const;
  [[noreturn]] void wrong_type(const std::string& key, const json& v, const std::string& expected) const;

 private:
  const json& object_;
  std::string owner_;
  std::string prefix_;
};

}  // namespace detail
}  // namespace pyramidion
