// The model metadata_props keys llmcompress writes and reads. They live in ir/ because the folders
// that write them (formats/ importers) and those that read them (calibration/, tools/) may not
// include one another; one definition keeps writer and readers on the same spelling.
#pragma once

namespace llmc {

// The longest sequence the model was trained for (decimal), e.g. llama2.c's seq_len.
inline constexpr const char* kMetaMaxSequenceLength = "llmcompress.max_sequence_length";
// Where the model came from ("llama2.c", "llmcompress synth (seed 1)").
inline constexpr const char* kMetaSource = "llmcompress.source";
// A llama2.c tokenizer file's bytes, base64, so a converted model carries its tokenizer.
inline constexpr const char* kMetaTokenizer = "llmcompress.tokenizer.llama2c";
// The chat template (Jinja text) a GGUF or Hugging Face model came with, shown by `inspect`.
inline constexpr const char* kMetaChatTemplate = "llmcompress.chat_template";
// What made an artifact (JSON): tool version, input SHA-256, canonical recipe, steps, metrics.
inline constexpr const char* kMetaManifest = "llmcompress.manifest";

}  // namespace llmc
