// HfWeights (see hf_weights.h): safetensors, sharded safetensors and pytorch_model.bin.
#include "import/hf_weights.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <caffe2/serialize/in_memory_adapter.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/unpickler.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "util/json_fields.h"
#include "util/mapped_file.h"
#include "util/output_file.h"
#include "util/tensor_text.h"

namespace pyramidion {
namespace detail {

namespace fs = std::filesystem;

struct HfWeights::File {
  std::string path;
  std::unique_ptr<MappedFile> mapped;  // safetensors
  uint64_t data_begin = 0;             // offset of the data after the header (safetensors)
};

namespace {

// The safetensors dtypes that hold floating-point weights, with their sizes in bytes.
int64_t float_dtype_size(const std::string& dtype) {
  if (dtype == "F64") return 8;
  if (dtype == "F32") return 4;
  if (dtype == "F16" || dtype == "BF16") return 2;
  return 0;
}

// The other dtypes of the format (their sizes only, to check the byte ranges).
int64_t dtype_size(const std::string& dtype) {
  if (const int64_t s = float_dtype_size(dtype)) return s;
  if (dtype == "I64" || dtype == "U64") return 8;
  if (dtype == "I32" || dtype == "U32") return 4;
  if (dtype == "I16" || dtype == "U16") return 2;
  if (dtype == "I8" || dtype == "U8" || dtype == "BOOL" || dtype == "F8_E4M3" || dtype == "F8_E5M2") return 1;
  return 0;
}

at::ScalarType scalar_type(const std::string& dtype) {
  if (dtype == "F64") return at::kDouble;
  if (dtype == "F16") return at::kHalf;
  if (dtype == "BF16") return at::kBFloat16;
  return at::kFloat;
}

// A shard named by an index must be a file of the directory itself.
void check_shard_name(const std::string& index, const std::string& shard) {
  const fs::path p(shard);
  if (shard.empty() || p.has_parent_path() || shard == "." || shard == ".." || p.is_absolute())
    throw std::invalid_argument("import: " + index + " names the shard '" + shard +
                                "', which is not a file name inside the model directory");
}

// torch.save's pickle of a state dict whose top-level dict is a collections.OrderedDict, as
// transformers saved pytorch_model.bin, rewritten for LibTorch's unpickler, which turns every
// OrderedDict into None (it expects one only as a tensor's empty backward hooks) and knows neither
// POP nor a BUILD on a dict. Such a pickle reads
//   PROTO 2, GLOBAL 'collections OrderedDict', BINPUT 0, EMPTY_TUPLE, REDUCE, BINPUT 1,
//   (MARK key value ... SETITEMS)*, [state BUILD,] STOP
// where the state is the dict's _metadata (module versions, unused here). It becomes
//   PROTO 2, EMPTY_DICT, BINPUT 1, MARK "__hooks" GLOBAL 'collections OrderedDict' BINPUT 0
//   EMPTY_TUPLE REDUCE SETITEMS, (MARK key value ... SETITEMS)*, STOP
// (memo 0 still holds the global that the tensors' hooks call; the entry "__hooks" is None).
// Opcodes are walked with their stack effects (pickle protocol 2, Python's pickletools), so that
// the state is found by structure, not by searching bytes. Returns the pickle unchanged when it
// does not start so, and throws std::invalid_argument for an opcode outside that protocol.
std::string rewrite_ordered_dict(std::string pickle) {
  static const char kPrefix[] = "\x80\x02" "ccollections\nOrderedDict\n" "q\x00" ")R";
  const std::string prefix(kPrefix, sizeof(kPrefix) - 1);
  if (pickle.compare(0, prefix.size(), prefix) != 0) return pickle;
  std::vector<int64_t> levels = {0};  // items on the stack above each open MARK (levels[0]: none open)
  size_t at = 2, state = std::string::npos, state_end = std::string::npos;
  const auto need = [&](size_t n) {
    if (at + n > pickle.size()) throw std::invalid_argument("the pickle ends inside an opcode");
  };
  const auto u32 = [&](size_t where) {
    return static_cast<size_t>(static_cast<unsigned char>(pickle[where])) |
           static_cast<size_t>(static_cast<unsigned char>(pickle[where + 1])) << 8 |
           static_cast<size_t>(static_cast<unsigned char>(pickle[where + 2])) << 16 |
           static_cast<size_t>(static_cast<unsigned char>(pickle[where + 3])) << 24;
  };
  bool dict_made = false;
  while (true) {
    need(1);
    const size_t op_at = at;
    const char op = pickle[at++];
    if (dict_made && levels.size() == 1 && levels[0] == 1 && state == std::string::npos && op != '(' &&
        op != 'q' && op != 'r' && op != '.')
      state = op_at;  // the first value pushed beside the finished dict: its state
    int64_t push = 0;
    switch (op) {
      case '.': break;
      case 'c': {  // GLOBAL module\n name\n
        for (int line = 0; line < 2; ++line) {
          const size_t nl = pickle.find('\n', at);
          if (nl == std::string::npos) throw std::invalid_argument("the pickle ends inside a GLOBAL");
          at = nl + 1;
        }
        push = 1;
        break;
      }
      case 'q': need(1); at += 1; break;                       // BINPUT
      case 'r': need(4); at += 4; break;                       // LONG_BINPUT
      case 'h': need(1); at += 1; push = 1; break;             // BINGET
      case 'j': need(4); at += 4; push = 1; break;             // LONG_BINGET
      case ')': case '}': case ']': case 'N': case '\x88': case '\x89': push = 1; break;
      case 'K': need(1); at += 1; push = 1; break;             // BININT1
      case 'M': need(2); at += 2; push = 1; break;             // BININT2
      case 'J': need(4); at += 4; push = 1; break;             // BININT
      case 'G': need(8); at += 8; push = 1; break;             // BINFLOAT
      case '\x8a': need(1); at += 1 + static_cast<unsigned char>(pickle[at]); push = 1; break;  // LONG1
      case 'U': need(1); at += 1 + static_cast<unsigned char>(pickle[at]); push = 1; break;     // SHORT_BINSTRING
      case 'X': case 'T': need(4); at += 4 + u32(at); push = 1; break;  // BINUNICODE, BINSTRING
      case 'R': push = -1; break;                              // REDUCE: callable, args -> value
      case 'Q': break;                                         // BINPERSID: id -> value
      case '\x85': break;                                      // TUPLE1
      case '\x86': push = -1; break;                           // TUPLE2
      case '\x87': push = -2; break;                           // TUPLE3
      case 's': push = -2; break;                              // SETITEM
      case 'b': push = -1; break;                              // BUILD
      case '(': levels.push_back(0); break;                    // MARK
      case 't':                                                // TUPLE
      case 'u': case 'e':                                      // SETITEMS, APPENDS
        if (levels.size() < 2) throw std::invalid_argument("the pickle closes a MARK it never opened");
        levels.pop_back();
        push = op == 't' ? 1 : 0;
        break;
      default:
        throw std::invalid_argument("the pickle has opcode " + std::to_string(static_cast<unsigned char>(op)) +
                                    " at byte " + std::to_string(op_at) + ", outside pickle protocol 2");
    }
    if (at > pickle.size()) throw std::invalid_argument("the pickle ends inside an opcode");
    levels.back() += push;
    if (levels.back() < 0) throw std::invalid_argument("the pickle pops more than it pushed");
    if (op == '.') break;
    if (op_at == prefix.size() - 1) dict_made = true;  // the REDUCE that makes the dict
    if (op == 'b' && levels.size() == 1 && levels[0] == 1 && state != std::string::npos) state_end = at;
  }
  if (state != std::string::npos && state_end != std::string::npos) pickle.erase(state, state_end - state);
  static const char kHooks[] = "\x80\x02" "}" "q\x01" "(" "X\x07\x00\x00\x00__hooks" "ccollections\nOrderedDict\n" "q\x00" ")R" "u";
  std::string out(kHooks, sizeof(kHooks) - 1);
  // The original BINPUT 1 after REDUCE memoized the dict; ours did it already.
  size_t rest = prefix.size();
  if (pickle.compare(rest, 2, std::string("q\x01", 2)) == 0) rest += 2;
  return out + pickle.substr(rest);
}

c10::IValue unpickle_state_dict(const std::vector<char>& bytes) {
  caffe2::serialize::PyTorchStreamReader zip(
      std::make_shared<caffe2::serialize::MemoryReadAdapter>(bytes.data(), static_cast<off_t>(bytes.size())));
  const auto [data, size] = zip.getRecord("data.pkl");
  std::string pickle(static_cast<const char*>(data.get()), size);
  pickle = rewrite_ordered_dict(std::move(pickle));
  size_t at = 0;
  torch::jit::Unpickler unpickler(
      [&](char* buffer, size_t n) {
        n = std::min(n, pickle.size() - at);
        std::memcpy(buffer, pickle.data() + at, n);
        at += n;
        return n;
      },
      nullptr, nullptr, [&](const std::string& name) { return std::get<0>(zip.getRecord("data/" + name)); },
      std::nullopt);
  unpickler.set_version(zip.version());
  return unpickler.parse_ivalue();
}

}  // namespace

HfWeights::~HfWeights() = default;
HfWeights::HfWeights(HfWeights&&) noexcept = default;
HfWeights& HfWeights::operator=(HfWeights&&) noexcept = default;

HfWeights::HfWeights(const std::string& dir) : dir_(dir) {
  const auto exists = [&](const char* name) {
    std::error_code ec;
    return fs::is_regular_file(fs::path(dir) / name, ec);
  };
  if (exists("model.safetensors")) {
    source_ = "model.safetensors";
    add_file("model.safetensors", nullptr);
    return;
  }
  for (const char* index : {"model.safetensors.index.json", "pytorch_model.bin.index.json"}) {
    if (!exists(index)) continue;
    const std::string path = (fs::path(dir) / index).string();
    const auto root = parse_strict("import: " + path, read_file("import", path));
    const auto map = root.is_object() ? root.find("weight_map") : root.end();
    if (map == root.end() || !map->is_object() || map->empty())
      throw std::invalid_argument("import: " + path + " has no \"weight_map\" object of tensor name -> shard file");
    std::map<std::string, std::vector<std::string>> shards;  // shard -> its tensors
    for (auto it = map->begin(); it != map->end(); ++it) {
      if (!it->is_string())
        throw std::invalid_argument("import: " + path + ": \"weight_map\"[\"" + it.key() + "\"] is not a file name");
      check_shard_name(path, it->get<std::string>());
      shards[it->get<std::string>()].push_back(it.key());
    }
    for (const auto& [shard, names] : shards) {
      if (!exists(shard.c_str()))
        throw std::invalid_argument("import: " + path + " names the shard '" + shard + "' (holding '" + names.front() +
                                    "'), which is missing from " + dir);
      add_file(shard, &names);
    }
    source_ = std::string(index) + " (" + std::to_string(shards.size()) + " shards)";
    return;
  }
  if (exists("pytorch_model.bin")) {
    source_ = "pytorch_model.bin";
    add_file("pytorch_model.bin", nullptr);
    return;
  }
  throw std::invalid_argument("import: " + dir +
                              " holds no weights: none of model.safetensors, model.safetensors.index.json, "
                              "pytorch_model.bin, pytorch_model.bin.index.json");
}

void HfWeights::add_file(const std::string& file_name, const std::vector<std::string>* only) {
  auto file = std::make_unique<File>();
  file->path = (fs::path(dir_) / file_name).string();
  const std::string& path = file->path;
  std::set<std::string> wanted;
  if (only) wanted.insert(only->begin(), only->end());
  const auto add = [&](const std::string& name, Entry entry) {
    if (only && !wanted.count(name)) return;  // the index says another shard holds it
    if (entries_.count(name))
      throw std::invalid_argument("import: tensor '" + name + "' is in two weights files (" + path + " and " +
                                  entries_.at(name).file->path + ")");
    entries_.emplace(name, std::move(entry));
  };

  if (file_name.size() >= 4 && file_name.compare(file_name.size() - 4, 4, ".bin") == 0) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("import: cannot open " + path);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) throw std::runtime_error("import: cannot read " + path);
    std::vector<std::pair<std::string, at::Tensor>> tensors;
    try {
      const auto value = unpickle_state_dict(bytes);
      if (!value.isGenericDict()) throw std::invalid_argument("it holds a " + value.tagKind() + ", not a dict");
      for (const auto& item : value.toGenericDict())
        if (item.key().isString() && item.value().isTensor())  // other values: e.g. a version number
          tensors.emplace_back(item.key().toStringRef(), item.value().toTensor());
    } catch (const c10::Error& e) {
      throw std::invalid_argument("import: " + path + " (" + std::to_string(bytes.size()) +
                                  " bytes) is not a torch.save file of a state dict, or is damaged or truncated: " +
                                  e.what_without_backtrace());
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument("import: " + path + " is not a torch.save file of a state dict: " + e.what());
    }
    for (auto& [name, tensor] : tensors) {
      Entry entry;
      entry.file = file.get();
      entry.dtype = "torch";
      entry.shape = tensor.sizes().vec();
      entry.tensor = std::move(tensor);
      add(name, std::move(entry));
    }
  } else {
    file->mapped = std::make_unique<MappedFile>(path, MappedFile::Access::sequential);
    const MappedFile& m = *file->mapped;
    const auto damaged = [&](const std::string& what) {
      return std::invalid_argument("import: " + path + " (" + std::to_string(m.size()) +
                                   " bytes) is not a safetensors file, or is damaged or truncated: " + what);
    };
    if (m.size() < 8) throw damaged("shorter than its 8-byte header size");
    uint64_t header = 0;
    for (int i = 7; i >= 0; --i) header = (header << 8) | m.data()[i];
    if (header > m.size() - 8) throw damaged("its header claims " + std::to_string(header) + " bytes");
    file->data_begin = 8 + header;
    const uint64_t data_size = m.size() - file->data_begin;
    json root;
    try {
      root = parse_strict("header", std::string(reinterpret_cast<const char*>(m.data()) + 8, header));
    } catch (const std::invalid_argument& e) {
      throw damaged(e.what());
    }
    if (!root.is_object()) throw damaged("its header is not a JSON object");
    for (auto it = root.begin(); it != root.end(); ++it) {
      if (it.key() == "__metadata__") continue;
      const json& t = *it;
      const auto where = "tensor '" + it.key() + "'";
      if (!t.is_object() || !t.contains("dtype") || !t["dtype"].is_string() || !t.contains("shape") ||
          !t["shape"].is_array() || !t.contains("data_offsets") || !t["data_offsets"].is_array() ||
          t["data_offsets"].size() != 2)
        throw damaged(where + " lacks dtype, shape or data_offsets");
      Entry entry;
      entry.file = file.get();
      entry.dtype = t["dtype"].get<std::string>();
      uint64_t numel = 1;
      for (const auto& d : t["shape"]) {
        if (!d.is_number_unsigned()) throw damaged(where + " has a shape that is not a list of sizes");
        const auto size = d.get<uint64_t>();
        if (size > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
            (size > 0 && numel > std::numeric_limits<uint64_t>::max() / size))
          throw damaged(where + " has an impossible shape");
        numel *= size;
        entry.shape.push_back(static_cast<int64_t>(size));
      }
      const auto& offsets = t["data_offsets"];
      if (!offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned())
        throw damaged(where + " has data_offsets that are not byte offsets");
      entry.begin = offsets[0].get<uint64_t>();
      entry.end = offsets[1].get<uint64_t>();
      if (entry.begin > entry.end || entry.end > data_size)
        throw damaged(where + " lies at bytes [" + std::to_string(entry.begin) + ", " + std::to_string(entry.end) +
                      ") of a data section of " + std::to_string(data_size) + " bytes");
      const int64_t size = dtype_size(entry.dtype);
      if (size == 0) throw damaged(where + " has the unknown dtype \"" + entry.dtype + "\"");
      if (numel > (entry.end - entry.begin) / static_cast<uint64_t>(size) ||
          numel * static_cast<uint64_t>(size) != entry.end - entry.begin)
        throw damaged(where + " of shape " + format_sizes(entry.shape) + " and dtype " + entry.dtype + " needs " +
                      std::to_string(numel) + " x " + std::to_string(size) + " bytes, not " +
                      std::to_string(entry.end - entry.begin));
      add(it.key(), std::move(entry));
    }
  }
  if (only)
    for (const auto& name : *only)
      if (!entries_.count(name))
        throw std::invalid_argument("import: the index puts tensor '" + name + "' in " + path + ", which lacks it");
  files_.push_back(std::move(file));
}

std::vector<std::string> HfWeights::names() const {
  std::vector<std::string> out;
  for (const auto& [name, entry] : entries_) out.push_back(name);
  return out;
}

bool HfWeights::has(const std::string& name) const { return entries_.count(name) > 0; }

std::vector<int64_t> HfWeights::shape(const std::string& name) const {
  const auto it = entries_.find(name);
  if (it == entries_.end()) throw std::invalid_argument("import: the checkpoint (" + source_ + ") has no tensor '" + name + "'");
  return it->second.shape;
}

at::Tensor HfWeights::get(const std::string& name) const {
  const auto it = entries_.find(name);
  if (it == entries_.end()) throw std::invalid_argument("import: the checkpoint (" + source_ + ") has no tensor '" + name + "'");
  const Entry& e = it->second;
  if (e.tensor.defined()) {
    if (!at::isFloatingType(e.tensor.scalar_type()))
      throw std::invalid_argument("import: tensor '" + name + "' of " + e.file->path + " is " +
                                  c10::toString(e.tensor.scalar_type()) + ", not floating point");
    return e.tensor.to(at::kFloat).contiguous().clone();
  }
  if (float_dtype_size(e.dtype) == 0)
    throw std::invalid_argument("import: tensor '" + name + "' of " + e.file->path + " has dtype " + e.dtype +
                                ", not a floating-point one (F64, F32, F16, BF16)");
  const MappedFile& m = *e.file->mapped;
  auto raw = at::empty(e.shape, at::TensorOptions().dtype(scalar_type(e.dtype)));  // the file's type
  if (e.end > e.begin) std::memcpy(raw.data_ptr(), m.data() + e.file->data_begin + e.begin, e.end - e.begin);
  m.check_unchanged();
  return raw.to(at::kFloat).contiguous();
}

}  // namespace detail
}  // namespace pyramidion
