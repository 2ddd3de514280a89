// Private: strict JSON field reading (see util/json_fields.h).
#include "util/json_fields.h"

#include "util/text.h"

#include <algorithm>
#include <limits>
#include <set>
#include <stdexcept>

namespace pyramidion {
namespace detail {

std::string describe_json(const json& v) {
  std::string s = v.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s + " (" + v.type_name() + ")";
}

void fail_field(const std::string& owner, const std::string& field, const std::string& value,
                const std::string& requirement) {
  throw std::invalid_argument(owner + "." + field + " = " + value + " " + requirement);
}

json parse_strict(const std::string& owner, const std::string& text) {
  struct Frame {
    std::set<std::string> keys;
    std::string current;  // the key being read in this object
  };
  std::vector<Frame> frames;
  std::string duplicate;
  auto callback = [&](int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        frames.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!frames.empty()) frames.pop_back();
        break;
      case json::parse_event_t::key: {
        const auto key = parsed.get<std::string>();
        if (!frames.empty()) {
          if (!frames.back().keys.insert(key).second && duplicate.empty()) {
            for (size_t i = 0; i + 1 < frames.size(); ++i) duplicate += frames[i].current + ".";
            duplicate += key;
          }
          frames.back().current = key;
        }
        break;
      }
      default:
        break;
    }
    return true;
  };
  json parsed;
  try {
    parsed = json::parse(text, callback);
  } catch (const json::exception& e) {  // syntax errors, and numbers out of range (1e400)
    throw std::invalid_argument(owner + ": invalid JSON: " + e.what());
  }
  if (!duplicate.empty())
    throw std::invalid_argument(owner + ": duplicate key '" + duplicate + "' (each key may appear once)");
  return parsed;
}

void reject_unknown_keys(const std::string& owner, const json& object, const std::string& prefix,
                         const std::vector<std::string>& known, const std::vector<std::string>& nested) {
  for (const auto& item : object.items()) {
    const std::string& key = item.key();
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    std::string message = owner + ": unknown key '" + prefix + key + "'";
    size_t best = 3;  // suggest only a near miss
    std::string suggestion;
    for (const auto& k : known) {
      const size_t d = edit_distance(key, k);
      if (d < best) {
        best = d;
        suggestion = prefix + k;
      }
    }
    for (const auto& k : nested)
      if (k.substr(k.find('.') + 1) == key) suggestion = k;
    if (!suggestion.empty()) message += " (did you mean '" + suggestion + "'?)";
    message += "; known keys:";
    for (const auto& k : known) message += " " + k;
    throw std::invalid_argument(message);
  }
}

const json* ObjectReader::find(const char* key) const {
  const auto it = object_.find(key);
  return it == object_.end() ? nullptr : &*it;
}

void ObjectReader::wrong_type(const std::string& key, const json& v, const std::string& expected) const {
  throw std::invalid_argument(owner_ + "." + prefix_ + key + " must be " + expected + ", got " + describe_json(v));
}

int64_t ObjectReader::to_int(const std::string& key, const json& v) const {
  if (v.is_number_unsigned()) {
    const auto u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail_field(owner_, prefix_ + key, v.dump(),
                 "is too large (at most " + std::to_string(std::numeric_limits<int64_t>::max()) + ")");
    return static_cast<int64_t>(u);
  }
  if (!v.is_number_integer()) wrong_type(key, v, "an integer");
  return v.get<int64_t>();
}

void ObjectReader::read(const char* key, int64_t& out) const {
  if (const json* v = find(key)) out = to_int(key, *v);
}

void ObjectReader::read(const char* key, uint64_t& out) const {
  if (const json* v = find(key)) {
    const int64_t value = to_int(key, *v);
    if (value < 0) fail_field(owner_, prefix_ + key, std::to_string(value), "must be >= 0");
    out = static_cast<uint64_t>(value);
  }
}

void ObjectReader::read(const char* key, double& out) const {
  if (const json* v = find(key)) {
    if (!v->is_number()) wrong_type(key, *v, "a number");
    out = v->get<double>();
  }
}

void ObjectReader::read(const char* key, bool& out) const {
  if (const json* v = find(key)) {
    if (!v->is_boolean()) wrong_type(key, *v, "true or false");
    out = v->get<bool>();
  }
}

void ObjectReader::read(const char* key, std::string& out) const {
  if (const json* v = find(key)) {
    if (!v->is_string()) wrong_type(key, *v, "a string");
    out = v->get<std::string>();
  }
}

void ObjectReader::read(const char* key, std::vector<int64_t>& out) const {
  if (const json* v = find(key)) {
    if (!v->is_array()) wrong_type(key, *v, "an array of integers");
    std::vector<int64_t> values;
    for (size_t i = 0; i < v->size(); ++i) values.push_back(to_int(std::string(key) + "[" + std::to_string(i) + "]", (*v)[i]));
    out = std::move(values);
  }
}

void ObjectReader::read(const char* key, std::vector<double>& out) const {
  if (const json* v = find(key)) {
    if (!v->is_array()) wrong_type(key, *v, "an array of numbers");
    std::vector<double> values;
    for (size_t i = 0; i < v->size(); ++i) {
      if (!(*v)[i].is_number()) wrong_type(std::string(key) + "[" + std::to_string(i) + "]", (*v)[i], "a number");
      values.push_back((*v)[i].get<double>());
    }
    out = std::move(values);
  }
}

void ObjectReader::read(const char* key, std::vector<std::string>& out) const {
  if (const json* v = find(key)) {
    if (!v->is_array()) wrong_type(key, *v, "an array of strings");
    std::vector<std::string> values;
    for (size_t i = 0; i < v->size(); ++i) {
      if (!(*v)[i].is_string()) wrong_type(std::string(key) + "[" + std::to_string(i) + "]", (*v)[i], "a string");
      values.push_back((*v)[i].get<std::string>());
    }
    out = std::move(values);
  }
}

}  // namespace detail
}  // namespace pyramidion
