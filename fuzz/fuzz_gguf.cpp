// GGUF: the reader, the llama import (every weight dequantised) and the tokenizer, encoding a
// fixed text when one loads.
#include "formats/gguf_import.h"
#include "formats/gguf_reader.h"
#include "formats/gguf_tokenizer.h"
#include "fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto g = llmc::GgufFile::open(llmc::fuzz::write_input(data, size, ".gguf"));
  if (!g.is_ok()) return 0;
  auto model = llmc::gguf_to_model(*g);
  if (model.is_ok())
    for (const auto& t : model->graph.initializers) (void)t.data();
  auto tok = llmc::gguf_tokenizer(*g);
  if (tok.is_ok()) {
    int prev = (*tok)->bos_id();
    for (int id : (*tok)->encode("Hello world, caf\xC3\xA9 42\n", true, true)) {
      (void)(*tok)->decode_piece(prev, id);
      prev = id;
    }
  }
  return 0;
}
