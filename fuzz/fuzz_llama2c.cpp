// llama2.c checkpoint and tokenizer: the first input byte picks which one the rest is. A
// tokenizer that parses then encodes a fixed text and decodes every id it gives.
#include "formats/llama2c_checkpoint.h"
#include "formats/llama2c_tokenizer.h"
#include "formats/model_loader.h"
#include "fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t* rest = data + 1;
  const size_t n = size - 1;
  if (data[0] & 1) {
    auto tok = llmc::Llama2cTokenizer::from_bytes(std::string(reinterpret_cast<const char*>(rest), n), "fuzz");
    if (tok.is_ok()) {
      int prev = tok->bos_id();
      for (int id : tok->encode("Once upon a time, \xC3\xA9t\xC3\xA9 \xF0\x9F\x98\x80 1234\n", true, true)) {
        (void)tok->decode_piece(prev, id);
        prev = id;
      }
    }
    return 0;
  }
  const std::string path = llmc::fuzz::write_input(rest, n, ".bin");
  auto model = llmc::load_model(path);
  if (model.is_ok())
    for (const auto& t : model->graph.initializers) (void)t.data();
  return 0;
}
