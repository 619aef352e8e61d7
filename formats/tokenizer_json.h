// Pieces of a Hugging Face tokenizer.json every model type reads the same way (BPE in
// bpe_tokenizer_json.cpp, WordPiece in wordpiece_tokenizer_json.cpp).
#pragma once
#include <string>
#include <vector>

#include "formats/json.h"
#include "ir/status.h"

namespace llmc {

// The "type" member of a component ("BPE", "BertNormalizer"), "" when there is none.
std::string component_type(const JsonValue* v);
// The boolean member `key`, or `fallback` when absent or not a boolean.
bool json_flag(const JsonValue& v, const char* key, bool fallback);
// A short description for error messages: the type, Sequence[...] spelled out, or "null".
std::string describe_component(const JsonValue* v);
// model.vocab ({"token": id, ...}) as tokens indexed by id; ids must be unique and dense enough
// that a hostile id cannot allocate far past the entries present. Gaps stay "" (the caller
// checks, as added tokens may fill them).
Status read_tokenizer_json_vocab(const JsonValue& vocab, const std::string& source, std::vector<std::string>* tokens);

// One added_tokens entry ({"id", "content", "special", ...}) put into `tokens` at its id:
// checked for an id and content, an id within `count` entries past the vocabulary, no
// lstrip/rstrip/single_word (not reproduced), and agreement with model.vocab. Gives the id.
Result<size_t> place_added_token(const JsonValue& t, size_t count, const std::string& source,
                                 std::vector<std::string>* tokens);

}  // namespace llmc
