// The tokenizer stored in a GGUF's tokenizer.ggml.* metadata, as one of ours:
//  - "gpt2" (byte-level BPE: GPT-2, SmolLM2, Qwen2, Llama 3) -> BpeTokenizer;
//  - "llama" (SentencePiece BPE with scores and byte fallback: Llama 2, TinyLlama, Mistral)
//    -> Llama2cTokenizer, whose encoder is SentencePiece's BPE: the vocabulary is rewritten in
//    llama2.c's tokenizer.bin layout ("▁" back to " ", scores kept), so it serialises, encodes
//    and decodes exactly as a llama2.c tokenizer does. That layout fixes <unk> = 0, BOS = 1,
//    EOS = 2 and byte tokens <0x00>..<0xFF> at 3..258 (every Llama-2-family vocabulary); a GGUF
//    that differs, or turns off the dummy-prefix space, is refused by name.
// Other kinds (e.g. "bert", "t5") are refused naming the kind.
#pragma once
#include <memory>
#include <string>

#include "formats/bpe_tokenizer.h"
#include "formats/gguf_reader.h"
#include "formats/tokenizer.h"

namespace llmc {

Result<std::shared_ptr<const Tokenizer>> gguf_tokenizer(const GgufFile& gguf);

// The byte-level BPE vocabulary of a GGUF whose tokenizer.ggml.model is "gpt2".
Result<BpeVocabulary> gguf_bpe_vocabulary(const GgufFile& gguf);

// The llama2.c tokenizer.bin bytes for a GGUF whose tokenizer.ggml.model is "llama".
Result<std::string> gguf_spm_as_llama2c(const GgufFile& gguf);

}  // namespace llmc
