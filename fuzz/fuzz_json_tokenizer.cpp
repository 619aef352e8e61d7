// JSON parser and tokenizer.json import: a tokenizer that loads encodes a fixed text.
#include "formats/bpe_tokenizer.h"
#include "formats/json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  (void)llmc::parse_json(text, "fuzz.json");
  auto tok = llmc::BpeTokenizer::from_tokenizer_json(text, "tokenizer.json");
  if (tok.is_ok()) {
    int prev = -1;
    for (int id : (*tok)->encode("Hello  world, caf\xC3\xA9 \xF0\x9F\x98\x80 12345\n\tx", true, true)) {
      (void)(*tok)->decode_piece(prev, id);
      prev = id;
    }
  }
  return 0;
}
