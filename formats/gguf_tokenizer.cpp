#include "formats/gguf_tokenizer.h"

#include <cmath>
#include <cstdio>
#include <cstring>

#include "formats/llama2c_tokenizer.h"

namespace llmc {

namespace {

constexpr const char* kSpmSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's visible space

// The id llama2.c's layout fixes for a GGUF metadata key, when the key is present.
Status expect_id(const GgufFile& g, const std::string& key, int64_t expected, int64_t n_tokens) {
  if (!g.find(key)) return Status::ok();
  LLMC_ASSIGN_OR_RETURN(int64_t id, g.get_int(key, 0, n_tokens - 1));
  if (id != expected)
    return unsupported(g.path(), ": ", key, " is ", id, "; SentencePiece vocabularies are read with ", expected,
                       " there (Llama 2 layout)");
  return Status::ok();
}

void append_i32(std::string& out, int32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); }

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) s.replace(pos, from.size(), to);
  return s;
}

}  // namespace

Result<BpeVocabulary> gguf_bpe_vocabulary(const GgufFile& g) {
  LLMC_ASSIGN_OR_RETURN(std::string model, g.get_string("tokenizer.ggml.model"));
  if (model != "gpt2")
    return unsupported(g.path(), ": tokenizer.ggml.model '", model, "' is not byte-level BPE ('gpt2')");
  BpeVocabulary v;
  LLMC_ASSIGN_OR_RETURN(v.tokens, g.get_strings("tokenizer.ggml.tokens"));
  LLMC_ASSIGN_OR_RETURN(v.merges, g.get_strings("tokenizer.ggml.merges"));
  if (g.find("tokenizer.ggml.token_type")) {
    LLMC_ASSIGN_OR_RETURN(auto types, g.get_ints("tokenizer.ggml.token_type"));
    if (types.size() != v.tokens.size())
      return invalid_input(g.path(), ": tokenizer.ggml.token_type has ", types.size(), " entries for ",
                           v.tokens.size(), " tokens");
    v.token_types.assign(types.begin(), types.end());
  }
  v.pre = "gpt2";
  if (g.find("tokenizer.ggml.pre")) {
    LLMC_ASSIGN_OR_RETURN(v.pre, g.get_string("tokenizer.ggml.pre"));
  }
  const int64_t n = static_cast<int64_t>(v.tokens.size()) - 1;
  if (g.find("tokenizer.ggml.bos_token_id")) {
    LLMC_ASSIGN_OR_RETURN(int64_t bos, g.get_int("tokenizer.ggml.bos_token_id", 0, n));
    v.bos_id = static_cast<int>(bos);
  }
  if (g.find("tokenizer.ggml.eos_token_id")) {
    LLMC_ASSIGN_OR_RETURN(int64_t eos, g.get_int("tokenizer.ggml.eos_token_id", 0, n));
    v.eos_id = static_cast<int>(eos);
  }
  if (const GgufValue* b = g.find("tokenizer.ggml.add_bos_token"); b && b->kind == GgufValue::Kind::kBool)
    v.add_bos = b->b;
  return v;
}

Result<std::string> gguf_spm_as_llama2c(const GgufFile& g) {
  LLMC_ASSIGN_OR_RETURN(std::string model, g.get_string("tokenizer.ggml.model"));
  if (model != "llama")
    return unsupported(g.path(), ": tokenizer.ggml.model '", model, "' is not SentencePiece BPE ('llama')");
  LLMC_ASSIGN_OR_RETURN(auto tokens, g.get_strings("tokenizer.ggml.tokens"));
  LLMC_ASSIGN_OR_RETURN(auto scores, g.get_floats("tokenizer.ggml.scores"));
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (static_cast<int64_t>(scores.size()) != n)
    return invalid_input(g.path(), ": tokenizer.ggml.scores has ", scores.size(), " entries for ", n, " tokens");
  if (n < 259 || n > (int64_t{1} << 24))
    return invalid_input(g.path(), ": tokenizer.ggml.tokens has ", n,
                         " tokens; a SentencePiece vocabulary with byte fallback needs 259 to 2^24");
  LLMC_RETURN_IF_ERROR(expect_id(g, "tokenizer.ggml.unknown_token_id", 0, n));
  LLMC_RETURN_IF_ERROR(expect_id(g, "tokenizer.ggml.bos_token_id", Llama2cTokenizer::kBos, n));
  LLMC_RETURN_IF_ERROR(expect_id(g, "tokenizer.ggml.eos_token_id", Llama2cTokenizer::kEos, n));
  if (const GgufValue* p = g.find("tokenizer.ggml.add_space_prefix"); p && p->kind == GgufValue::Kind::kBool && !p->b)
    return unsupported(g.path(), ": tokenizer.ggml.add_space_prefix is false; only the dummy-prefix form is read");
  for (int b = 0; b < 256; ++b) {
    char want[8];
    std::snprintf(want, sizeof want, "<0x%02X>", b);
    if (tokens[static_cast<size_t>(b + 3)] != want)
      return unsupported(g.path(), ": token ", b + 3, " is '", tokens[static_cast<size_t>(b + 3)], "', expected byte token ",
                         want, " (byte fallback at ids 3..258)");
  }
  std::string out;
  size_t longest = 0;
  append_i32(out, 0);  // max_token_length, patched below
  for (int64_t i = 0; i < n; ++i) {
    const std::string piece = replace_all(tokens[static_cast<size_t>(i)], kSpmSpace, " ");
    if (piece.size() > (size_t{1} << 20))
      return invalid_input(g.path(), ": token ", i, " is ", piece.size(), " bytes long");
    const double s = scores[static_cast<size_t>(i)];
    float score = std::isfinite(s) ? static_cast<float>(s) : -1e30f;  // never merged
    out.append(reinterpret_cast<const char*>(&score), 4);
    append_i32(out, static_cast<int32_t>(piece.size()));
    out += piece;
    longest = std::max(longest, piece.size());
  }
  const int32_t max_len = static_cast<int32_t>(std::max<size_t>(longest, 1));
  std::memcpy(out.data(), &max_len, 4);
  return out;
}

Result<std::shared_ptr<const Tokenizer>> gguf_tokenizer(const GgufFile& g) {
  LLMC_ASSIGN_OR_RETURN(std::string model, g.get_string("tokenizer.ggml.model"));
  if (model == "llama") {
    LLMC_ASSIGN_OR_RETURN(std::string bytes, gguf_spm_as_llama2c(g));
    LLMC_ASSIGN_OR_RETURN(auto tok, Llama2cTokenizer::from_bytes(bytes, g.path()));
    return std::shared_ptr<const Tokenizer>(std::make_shared<Llama2cTokenizer>(std::move(tok)));
  }
  if (model != "gpt2")
    return unsupported(g.path(), ": tokenizer.ggml.model '", model,
                       "' is not supported (byte-level BPE 'gpt2' and SentencePiece 'llama' are)");
  LLMC_ASSIGN_OR_RETURN(BpeVocabulary vocab, gguf_bpe_vocabulary(g));
  LLMC_ASSIGN_OR_RETURN(auto tok, BpeTokenizer::create(std::move(vocab), g.path()));
  return std::shared_ptr<const Tokenizer>(std::move(tok));
}

}  // namespace llmc
