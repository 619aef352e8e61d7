// BpeTokenizer::serialize / deserialize: the vocabulary in a compact binary form for model
// metadata. Layout (integers are LEB128 varints, strings a varint length then the bytes):
//   "llmc.bpe"  version (1)  pre  bos+1  eos+1  add_bos
//   token count, tokens
//   has_types (0/1), then one type per token when 1
//   merge count, each merge as (left id, right id): halves of a merge are tokens, so two small
//   ids replace the "left right" text (about half the bytes).
// Reading checks every length against what remains and rebuilds through create(), so hostile
// bytes give an error naming the source.
#include <cstdint>
#include <string_view>
#include <unordered_map>

#include "formats/bpe_tokenizer.h"
#include "formats/serial_io.h"

namespace llmc {
namespace {

constexpr std::string_view kMagic = "llmc.bpe";
constexpr uint64_t kVersion = 1;

}  // namespace

std::string BpeTokenizer::serialize() const {
  const BpeVocabulary& v = vocabulary();
  std::string out(kMagic);
  put_varint(kVersion, &out);
  put_string(v.pre, &out);
  put_varint(static_cast<uint64_t>(v.bos_id + 1), &out);  // create() made both >= -1
  put_varint(static_cast<uint64_t>(v.eos_id + 1), &out);
  out.push_back(v.add_bos ? 1 : 0);
  put_varint(v.tokens.size(), &out);
  for (const std::string& t : v.tokens) put_string(t, &out);
  put_varint(v.token_types.empty() ? 0 : 1, &out);
  for (int32_t type : v.token_types) put_varint(static_cast<uint32_t>(type), &out);
  std::unordered_map<std::string_view, uint64_t> id_of;
  id_of.reserve(v.tokens.size());
  for (size_t i = 0; i < v.tokens.size(); ++i) id_of.emplace(v.tokens[i], i);
  put_varint(v.merges.size(), &out);
  for (const std::string& m : v.merges) {  // create() checked: "left right", both tokens
    size_t space = m.find(' ');
    put_varint(id_of.at(std::string_view(m).substr(0, space)), &out);
    put_varint(id_of.at(std::string_view(m).substr(space + 1)), &out);
  }
  return out;
}

Result<std::shared_ptr<const BpeTokenizer>> BpeTokenizer::deserialize(const std::string& bytes,
                                                                      const std::string& source) {
  if (bytes.compare(0, kMagic.size(), kMagic) != 0)
    return invalid_input(source, ": not a serialized BPE tokenizer (no '", kMagic, "' header)");
  SerialReader in(std::string_view(bytes).substr(kMagic.size()), source, "serialized BPE tokenizer");
  uint64_t version, bos, eos, count, has_types;
  LLMC_RETURN_IF_ERROR(in.varint(~uint64_t{0}, "version", &version));
  if (version != kVersion)
    return in.error("version ", version, " is not supported (this build reads ", kVersion, ")");
  BpeVocabulary v;
  LLMC_RETURN_IF_ERROR(in.string("pre-tokenizer name", &v.pre));
  constexpr uint64_t kMaxId = uint64_t{INT32_MAX};
  LLMC_RETURN_IF_ERROR(in.varint(kMaxId, "bos id", &bos));
  LLMC_RETURN_IF_ERROR(in.varint(kMaxId, "eos id", &eos));
  v.bos_id = static_cast<int>(bos) - 1;
  v.eos_id = static_cast<int>(eos) - 1;
  uint64_t add_bos;
  LLMC_RETURN_IF_ERROR(in.varint(1, "add_bos flag", &add_bos));
  v.add_bos = add_bos == 1;
  LLMC_RETURN_IF_ERROR(in.count("token count", &count));
  for (uint64_t i = 0; i < count; ++i) {  // grows with the bytes actually read
    LLMC_RETURN_IF_ERROR(in.string("token", &v.tokens.emplace_back()));
  }
  LLMC_RETURN_IF_ERROR(in.varint(1, "token-types flag", &has_types));
  if (has_types) {
    if (v.tokens.size() > in.remaining()) return in.error("truncated in token types");
    v.token_types.resize(v.tokens.size());
    for (int32_t& type : v.token_types) {
      uint64_t t;
      LLMC_RETURN_IF_ERROR(in.varint(UINT32_MAX, "token type", &t));
      type = static_cast<int32_t>(static_cast<uint32_t>(t));
    }
  }
  LLMC_RETURN_IF_ERROR(in.count("merge count", &count));
  if (count > in.remaining() / 2) return in.error("merge count ", count, " exceeds the bytes left");
  if (count > 0 && v.tokens.empty()) return in.error("merges but no tokens");
  v.merges.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t left, right;
    LLMC_RETURN_IF_ERROR(in.varint(v.tokens.size() - 1, "merge's left token id", &left));
    LLMC_RETURN_IF_ERROR(in.varint(v.tokens.size() - 1, "merge's right token id", &right));
    v.merges.push_back(v.tokens[left] + " " + v.tokens[right]);
  }
  if (!in.at_end()) return in.error(in.remaining(), " trailing bytes");
  return create(std::move(v), source);
}

}  // namespace llmc
