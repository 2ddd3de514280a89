// pegasus_vocabulary (see pegasus_vocabulary.h): a rewrite of sentencepiece's ModelProto at the
// protobuf wire level (sentencepiece_model.proto: ModelProto.pieces = 1, .trainer_spec = 2;
// SentencePiece.piece = 1, .score = 2, .type = 3; TrainerSpec.unk_id = 40, bos_id = 41,
// eos_id = 42, pad_id = 43, unk_surface = 44). Debian's sentencepiece ships no ModelProto header.
#include "import/pegasus_vocabulary.h"

#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace pyramidion {
namespace detail {
namespace {

enum PieceType : uint64_t { kNormal = 1, kUnknown = 2, kControl = 3 };

struct Reader {
  std::string_view bytes;
  size_t at = 0;
  const std::string& who;

  [[noreturn]] void fail(const std::string& what) const {
    throw std::invalid_argument(who + " is not a sentencepiece model (" + what + " at byte " + std::to_string(at) + ")");
  }
  bool done() const { return at >= bytes.size(); }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (at >= bytes.size()) fail("a truncated number");
      const auto b = static_cast<unsigned char>(bytes[at++]);
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    fail("an overlong number");
  }
  // One field: its number, wire type and the bytes it spans (tag included) and its payload.
  struct Field {
    uint64_t number, type;
    std::string_view whole, payload;
    uint64_t value = 0;
  };
  Field field() {
    const size_t begin = at;
    const uint64_t tag = varint();
    Field f{tag >> 3, tag & 7, {}, {}};
    size_t payload_begin = at;
    switch (f.type) {
      case 0: f.value = varint(); break;
      case 1: at += 8; break;
      case 5: at += 4; break;
      case 2: {
        const uint64_t n = varint();
        payload_begin = at;
        if (n > bytes.size() - at) fail("a field longer than the model");
        at += n;
        break;
      }
      default: fail("wire type " + std::to_string(f.type));
    }
    if (at > bytes.size()) fail("a truncated field");
    f.whole = bytes.substr(begin, at - begin);
    f.payload = bytes.substr(payload_begin, at - payload_begin);
    return f;
  }
};

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7F) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

void put_bytes(std::string& out, uint64_t number, std::string_view payload) {
  put_varint(out, (number << 3) | 2);
  put_varint(out, payload.size());
  out += payload;
}

void put_int(std::string& out, uint64_t number, int64_t value) {
  put_varint(out, number << 3);
  put_varint(out, static_cast<uint64_t>(value));  // negative int32: ten bytes, as protobuf writes them
}

// A SentencePiece message: piece, score 0, type.
std::string piece_message(const std::string& piece, PieceType type) {
  std::string m;
  put_bytes(m, 1, piece);
  m += static_cast<char>((2 << 3) | 5);  // score = 0.0f
  m.append(4, '\0');
  put_int(m, 3, type);
  return m;
}

struct Piece {
  std::string piece;
  uint64_t type = kNormal;  // the field's default
};

Piece read_piece(std::string_view payload, const std::string& who) {
  Reader r{payload, 0, who};
  Piece p;
  while (!r.done()) {
    const auto f = r.field();
    if (f.number == 1 && f.type == 2) p.piece = std::string(f.payload);
    if (f.number == 3 && f.type == 0) p.type = f.value;
  }
  return p;
}

}  // namespace

std::string pegasus_vocabulary(const std::string& spiece, int64_t offset, const std::string& who) {
  if (offset < 2) throw std::invalid_argument(who + ": offset = " + std::to_string(offset) + " must be >= 2");
  Reader r{spiece, 0, who};
  std::vector<Reader::Field> pieces, others;
  std::string_view trainer_spec;
  while (!r.done()) {
    const auto f = r.field();
    if (f.number == 1 && f.type == 2) {
      pieces.push_back(f);
    } else if (f.number == 2 && f.type == 2) {
      trainer_spec = f.payload;
    } else {
      others.push_back(f);
    }
  }
  if (pieces.size() < 3)
    throw std::invalid_argument(who + " has " + std::to_string(pieces.size()) +
                                " pieces; PEGASUS's vocabulary starts with <pad>, </s> and <unk>");
  const Piece pad = read_piece(pieces[0].payload, who), eos = read_piece(pieces[1].payload, who),
              unk = read_piece(pieces[2].payload, who);
  if (pad.piece != "<pad>" || eos.piece != "</s>" || unk.type != kUnknown)
    throw std::invalid_argument(who + " starts with the pieces '" + pad.piece + "', '" + eos.piece + "', '" +
                                unk.piece + "'; PEGASUS's vocabulary starts with <pad>, </s> and the unknown piece");

  std::string out;
  put_bytes(out, 1, piece_message("<pad>", kControl));
  put_bytes(out, 1, piece_message("</s>", kControl));
  put_bytes(out, 1, piece_message("<mask_1>", kControl));
  put_bytes(out, 1, piece_message("<mask_2>", kControl));
  for (int64_t i = 2; i < offset; ++i) put_bytes(out, 1, piece_message("<unk_" + std::to_string(i) + ">", kControl));
  for (size_t i = 2; i < pieces.size(); ++i) out += pieces[i].whole;
  // The trainer spec with the new special ids appended (a later value of a field wins).
  std::string spec(trainer_spec);
  put_int(spec, 40, 2 + offset);  // unk_id
  put_int(spec, 41, -1);          // bos_id: none
  put_int(spec, 42, 1);           // eos_id
  put_int(spec, 43, 0);           // pad_id
  put_bytes(spec, 44, "");        // unk_surface: decoded to nothing
  put_bytes(out, 2, spec);
  for (const auto& f : others) out += f.whole;
  return out;
}

}  // namespace detail
}  // namespace pyramidion
