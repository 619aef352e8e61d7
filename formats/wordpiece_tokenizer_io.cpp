// WordPieceTokenizer::serialize / deserialize: the vocabulary in a compact binary form for model
// metadata (formats/serial_io.h: varints, length-prefixed strings). Layout:
//   "llmc.wordpiece"  version (1)
//   flags: bit 0 normalizer, 1 clean_text, 2 handle_chinese_chars, 3 strip_accents, 4 lowercase,
//          5 add_bos, 6 decoder cleanup
//   continuing prefix, max_input_chars_per_word, unk id, bos id+1, eos id+1
//   token count, tokens
//   added count, each as id*2 + special
// Reading checks every value against its limit and rebuilds through create(), so hostile bytes
// give an error naming the source.
#include <cstdint>
#include <string_view>

#include "formats/serial_io.h"
#include "formats/wordpiece_tokenizer.h"

namespace llmc {
namespace {

constexpr std::string_view kMagic = "llmc.wordpiece";
constexpr uint64_t kVersion = 1;
constexpr uint64_t kMaxId = uint64_t{INT32_MAX};

enum Flag : uint64_t {
  kNormalizer = 1,
  kCleanText = 2,
  kChinese = 4,
  kStripAccents = 8,
  kLowercase = 16,
  kAddBos = 32,
  kCleanup = 64,
};

}  // namespace

std::string WordPieceTokenizer::serialize() const {
  const WordPieceVocabulary& v = vocabulary();
  const BertNormalizerOptions& n = v.normalizer;
  std::string out(kMagic);
  put_varint(kVersion, &out);
  uint64_t flags = 0;
  const std::pair<bool, uint64_t> bits[] = {{n.enabled, kNormalizer},       {n.clean_text, kCleanText},
                                             {n.handle_chinese_chars, kChinese}, {n.strip_accents, kStripAccents},
                                             {n.lowercase, kLowercase},         {v.add_bos, kAddBos},
                                             {v.decoder_cleanup, kCleanup}};
  for (auto [on, bit] : bits)
    if (on) flags |= bit;
  put_varint(flags, &out);
  put_string(v.continuing_prefix, &out);
  put_varint(static_cast<uint64_t>(v.max_input_chars_per_word), &out);  // create() made these >= 0
  put_varint(static_cast<uint64_t>(v.unk_id), &out);
  put_varint(static_cast<uint64_t>(v.bos_id + 1), &out);
  put_varint(static_cast<uint64_t>(v.eos_id + 1), &out);
  put_varint(v.tokens.size(), &out);
  for (const std::string& t : v.tokens) put_string(t, &out);
  put_varint(v.added.size(), &out);
  for (const auto& a : v.added) put_varint(static_cast<uint64_t>(a.id) * 2 + (a.special ? 1 : 0), &out);
  return out;
}

Result<std::shared_ptr<const WordPieceTokenizer>> WordPieceTokenizer::deserialize(const std::string& bytes,
                                                                                  const std::string& source) {
  if (bytes.compare(0, kMagic.size(), kMagic) != 0)
    return invalid_input(source, ": not a serialized WordPiece tokenizer (no '", kMagic, "' header)");
  SerialReader in(std::string_view(bytes).substr(kMagic.size()), source, "serialized WordPiece tokenizer");
  uint64_t version, flags, max_chars, unk, bos, eos, count;
  LLMC_RETURN_IF_ERROR(in.varint(~uint64_t{0}, "version", &version));
  if (version != kVersion)
    return in.error("version ", version, " is not supported (this build reads ", kVersion, ")");
  LLMC_RETURN_IF_ERROR(in.varint(127, "flags", &flags));
  WordPieceVocabulary v;
  BertNormalizerOptions& n = v.normalizer;
  n.enabled = flags & kNormalizer;
  n.clean_text = flags & kCleanText;
  n.handle_chinese_chars = flags & kChinese;
  n.strip_accents = flags & kStripAccents;
  n.lowercase = flags & kLowercase;
  v.add_bos = flags & kAddBos;
  v.decoder_cleanup = flags & kCleanup;
  LLMC_RETURN_IF_ERROR(in.string("continuing prefix", &v.continuing_prefix));
  LLMC_RETURN_IF_ERROR(in.varint(1 << 20, "max_input_chars_per_word", &max_chars));
  LLMC_RETURN_IF_ERROR(in.varint(kMaxId, "unk id", &unk));
  LLMC_RETURN_IF_ERROR(in.varint(kMaxId, "bos id", &bos));
  LLMC_RETURN_IF_ERROR(in.varint(kMaxId, "eos id", &eos));
  v.max_input_chars_per_word = static_cast<int>(max_chars);
  v.unk_id = static_cast<int>(unk);
  v.bos_id = static_cast<int>(bos) - 1;
  v.eos_id = static_cast<int>(eos) - 1;
  LLMC_RETURN_IF_ERROR(in.count("token count", &count));
  for (uint64_t i = 0; i < count; ++i) {  // grows with the bytes actually read
    LLMC_RETURN_IF_ERROR(in.string("token", &v.tokens.emplace_back()));
  }
  LLMC_RETURN_IF_ERROR(in.count("added token count", &count));
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t packed;
    LLMC_RETURN_IF_ERROR(in.varint(kMaxId * 2 + 1, "added token", &packed));
    v.added.push_back({static_cast<int32_t>(packed / 2), (packed & 1) != 0});
  }
  if (!in.at_end()) return in.error(in.remaining(), " trailing bytes");
  return create(std::move(v), source);
}

}  // namespace llmc
