// Private: strict reading of JSON configuration objects (ModelConfig, TrainConfig) and atomic
// file writes. Every error names the owner ("ModelConfig"), the key and the offending value.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace pyramidion {
namespace detail {

using json = nlohmann::json;

/// The shortest decimal that reads back as the same double ("0.1", not "0.100000").
std::string format_double(double v);
/// Levenshtein distance, for "did you mean" suggestions.
size_t edit_distance(const std::string& a, const std::string& b);
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
  void read(const char* key, double& out) const;
  void read(const char* key, bool& out) const;
  void read(const char* key, std::string& out) const;
  void read(const char* key, std::vector<int64_t>& out) const;
  void read(const char* key, std::vector<double>& out) const;
  /// One of `names` (the string forms of `values`, same order).
  template <typename Enum>
  void read_enum(const char* key, Enum& out, const std::vector<Enum>& values,
                 const std::vector<std::string>& names) const {
    const json* v = find(key);
    if (!v) return;
    std::string allowed;
    for (const auto& name : names) allowed += (allowed.empty() ? "\"" : ", \"") + name + "\"";
    if (!v->is_string()) wrong_type(key, *v, "one of the strings " + allowed);
    for (size_t i = 0; i < values.size(); ++i) {
      if (v->get<std::string>() == names[i]) {
        out = values[i];
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

/// Writes `text` to `path` atomically: a temporary file next to it, flushed, renamed over it, the
/// directory flushed. A crash leaves the old file or the new one, never a partial one. Throws
/// std::runtime_error "<who>: <what> '<path>': <strerror>".
void write_file_atomically(const std::string& who, const std::string& path, const std::string& text);

/// Reads a whole (small) file; std::runtime_error "<who>: cannot open '<path>': ..." otherwise.
std::string read_file(const std::string& who, const std::string& path);

}  // namespace detail
}  // namespace pyramidion

namespace pyramidion {
namespace detail {
/// fsync a file or directory, so that a rename after it never exposes unwritten data. Throws
/// std::runtime_error "<who>: cannot flush '<path>' ...".
void sync_path(const std::string& who, const std::string& path);
}  // namespace detail
}  // namespace pyramidion
