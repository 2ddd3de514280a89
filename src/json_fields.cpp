// Private: strict JSON field reading and atomic file writes (see json_fields.h).
#include "json_fields.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <stdexcept>

namespace pyramidion {
namespace detail {

std::string format_double(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
      diagonal = up;
    }
  }
  return row[b.size()];
}

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

namespace {
[[noreturn]] void io_error(const std::string& who, const std::string& what, const std::string& path, int error) {
  throw std::runtime_error(who + ": " + what + " '" + path + "': " + std::strerror(error));
}
}  // namespace

void write_file_atomically(const std::string& who, const std::string& path, const std::string& text) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  if (target.filename().empty()) io_error(who, "not a file path:", path, EISDIR);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  // A hidden name next to the target: the rename stays within one filesystem, hence atomic.
  std::string temp = (dir / ("." + target.filename().string() + ".tmp-XXXXXX")).string();
  const int fd = ::mkstemp(temp.data());
  if (fd < 0) io_error(who, "cannot create a temporary file to write", path, errno);
  auto fail_and_clean = [&](const std::string& what, int error) {
    ::close(fd);
    ::unlink(temp.c_str());
    io_error(who, what, path, error);
  };
  if (::fchmod(fd, 0644) != 0) fail_and_clean("cannot set the permissions of the file for", errno);
  size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail_and_clean("cannot write", errno);
    }
    written += static_cast<size_t>(n);
  }
  // Flushed before the rename, so that a crash never leaves `path` naming an incomplete file.
  if (::fsync(fd) != 0) fail_and_clean("cannot flush", errno);
  if (::close(fd) != 0) {
    const int error = errno;
    ::unlink(temp.c_str());
    io_error(who, "cannot write", path, error);
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    const int error = errno;
    ::unlink(temp.c_str());
    io_error(who, "cannot rename the temporary file onto", path, error);
  }
  // Persist the rename itself; a filesystem that cannot sync a directory has nothing to lose here.
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

std::string read_file(const std::string& who, const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw std::runtime_error(who + ": cannot read '" + path + "': is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(who + ": cannot open '" + path + "': " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw std::runtime_error(who + ": cannot read '" + path + "': " + std::strerror(errno));
  return text.str();
}

}  // namespace detail
}  // namespace pyramidion

namespace pyramidion {
namespace detail {
void sync_path(const std::string& who, const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) io_error(who, "cannot open to flush", path, errno);
  const int rc = ::fsync(fd);
  const int error = errno;
  ::close(fd);
  if (rc != 0) io_error(who, "cannot flush", path, error);
}
}  // namespace detail
}  // namespace pyramidion
