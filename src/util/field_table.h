// Private: one table of fields per configuration struct (TrainConfig, ModelConfig, PoolerConfig,
// and the search settings of generation.json).
// Each row names a field once, with its member, its help line and its flags; the table then does
// everything that used to repeat the schema: reading JSON (unknown keys rejected with a
// suggestion), writing JSON in declaration order, the --help listing with defaults, --set
// KEY=VALUE, equality, and the list of changed settings on resume.
//
//   static const FieldTable<TrainConfig>& table() {
//     static const auto t = FieldTable<TrainConfig>("TrainConfig")
//         .add("max_steps", &TrainConfig::max_steps, "optimizer updates in total", kContinuation)
//         .add("lr_decay", &TrainConfig::lr_decay, lr_decay_names(), "after warmup: ...", kContinuation);
//     return t;
//   }
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <type_traits>
#include <string>
#include <utility>
#include <vector>

#include "util/enum_names.h"
#include "util/json_fields.h"

namespace pyramidion {
namespace detail {

/// Flags of a field.
enum FieldFlag : unsigned {
  kPathField = 1u << 0,     // a file path: relative paths in a JSON file are relative to that file
  kContinuation = 1u << 1,  // changing it on resume makes the run differ from an uninterrupted one
};

template <typename Config>
class FieldTable {
 public:
  using ordered_json = nlohmann::ordered_json;

  struct Field {
    std::string name;
    std::string help;
    unsigned flags = 0;
    /// The JSON value is a string: --set takes the text as it is ("--set out=2024").
    bool textual = false;
    std::function<void(const ObjectReader&, Config&)> read;  // reads the key when present
    std::function<ordered_json(const Config&)> write;
  };

  explicit FieldTable(std::string owner) : owner_(std::move(owner)) {}

  /// A field of a type ObjectReader reads: int64_t, uint64_t, double, bool, std::string,
  /// std::vector<int64_t>, std::vector<double>, std::vector<std::string>.
  template <typename T>
  FieldTable&& add(const char* name, T Config::*member, const char* help, unsigned flags = 0) && {
    Field f{name, help, flags, std::is_same<T, std::string>::value, nullptr, nullptr};
    f.read = [name, member](const ObjectReader& r, Config& c) { r.read(name, c.*member); };
    f.write = [member](const Config& c) { return ordered_json(c.*member); };
    fields_.push_back(std::move(f));
    return std::move(*this);
  }

  /// An enum field, written as the names of `names`.
  template <typename E>
  FieldTable&& add(const char* name, E Config::*member, const EnumNames<E>& names, const char* help,
                   unsigned flags = 0) && {
    Field f{name, help, flags, true, nullptr, nullptr};
    f.read = [name, member, names](const ObjectReader& r, Config& c) { r.read(name, c.*member, names); };
    const std::string type = owner_ + "." + name;
    f.write = [member, names, type](const Config& c) { return ordered_json(name_of(names, c.*member, type)); };
    fields_.push_back(std::move(f));
    return std::move(*this);
  }

  /// A field read and written by the given functions (a nested object, a type with its own text form).
  FieldTable&& add(Field field) && {
    fields_.push_back(std::move(field));
    return std::move(*this);
  }

  const std::vector<Field>& fields() const { return fields_; }

  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& f : fields_) out.push_back(f.name);
    return out;
  }

  const Field* find(const std::string& name) const {
    for (const auto& f : fields_)
      if (f.name == name) return &f;
    return nullptr;
  }

  /// Reads the fields present in `object` into `c` (absent ones keep their values). Throws
  /// std::invalid_argument for a value that is not an object, unknown keys (`prefix` and `nested`
  /// as reject_unknown_keys takes them) and mistyped values, naming `owner` (default: the table's).
  void read(const json& object, Config& c, const std::string& prefix = "", const std::vector<std::string>& nested = {},
            const std::string& owner = "") const {
    const std::string& who = owner.empty() ? owner_ : owner;
    if (!object.is_object())
      throw std::invalid_argument(who + (prefix.empty() ? "" : "." + prefix.substr(0, prefix.size() - 1)) +
                                  ": the JSON must be an object of fields, got " + describe_json(object));
    reject_unknown_keys(who, object, prefix, names(), nested);
    const ObjectReader reader(object, who, prefix);
    for (const auto& f : fields_) f.read(reader, c);
  }

  /// Every field, in table order.
  ordered_json write(const Config& c) const {
    ordered_json j = ordered_json::object();
    for (const auto& f : fields_) j[f.name] = f.write(c);
    return j;
  }

  /// Field-by-field equality of what write() gives (doubles compared exactly).
  bool equal(const Config& a, const Config& b) const {
    for (const auto& f : fields_)
      if (f.write(a) != f.write(b)) return false;
    return true;
  }

  /// One line per field: "  name = <default as JSON>  help", the help aligned at `column`.
  std::string help(const Config& defaults, size_t column = 34) const {
    std::string text;
    for (const auto& f : fields_) {
      std::string line = "  " + f.name + " = " + f.write(defaults).dump();
      if (line.size() < column) line.resize(column, ' ');
      text += line + "  " + f.help + "\n";
    }
    return text;
  }

  /// Sets the field `key` from command-line text: parsed as JSON of the field's type, except that
  /// a textual field takes the text as it is and a bare word is a string. Throws
  /// std::invalid_argument naming the key and the value.
  void set(Config& c, const std::string& key, const std::string& text) const {
    const Field* f = find(key);
    json value;
    if (f && f->textual) {
      value = text;
    } else {
      try {
        value = json::parse(text);
      } catch (const json::exception&) {
        value = text;  // a bare word: a string (then a type error for a non-string field)
      }
    }
    json object;
    object[key] = value;
    try {
      read(object, c);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string(e.what()) + " (from '" + key + "=" + text + "')");
    }
  }

  /// "key a -> b, ..." for the fields with `flag` whose values differ between two write() results
  /// (keys missing from `before`, written by an older version, are not compared).
  std::string changes(const json& before, const json& after, unsigned flag) const {
    std::string out;
    for (const auto& f : fields_) {
      if (!(f.flags & flag) || !before.contains(f.name) || !after.contains(f.name)) continue;
      if (before.at(f.name) != after.at(f.name))
        out += (out.empty() ? "" : ", ") + f.name + " " + before.at(f.name).dump() + " -> " + after.at(f.name).dump();
    }
    return out;
  }

 private:
  std::string owner_;
  std::vector<Field> fields_;
};

}  // namespace detail
}  // namespace pyramidion
