// Shared by the commands that execute models: load + plan a Session, wrap a Decoder, read
// token inputs (text through the model's tokenizer, or a .npy token file).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "formats/tokenizer.h"
#include "runtime/decoder.h"
#include "runtime/session.h"

namespace llmc::cli {

struct LoadedModel {
  std::shared_ptr<const Model> model;
  std::shared_ptr<rt::Session> session;
  std::string path;
};

// The runtime's memory limits, from LLMC_MAX_TENSOR_BYTES (one tensor) and LLMC_MAX_TOTAL_BYTES
// (activations alive at once): bytes, or with a K/M/G/T suffix (powers of 1024); unset keeps
// the defaults. Environment, not flags: every command that runs a model honours them alike.
Result<rt::MemoryLimits> memory_limits_from_env();
// The help text's paragraph on those variables.
std::string memory_limits_help();

// With `pool`, the session runs on that shared pool (`threads` is then ignored).
Result<LoadedModel> open_model(const std::string& path, int threads, std::shared_ptr<rt::ThreadPool> pool = nullptr);
Result<std::unique_ptr<rt::Decoder>> open_decoder(const LoadedModel& m);
// Tokens from --text FILE (Tokenizer::encode_corpus, like `tokenize --file`) or
// --tokens FILE.npy (1-D int32/int64). Exactly one must be given.
Result<std::vector<int32_t>> load_tokens(const LoadedModel& m, const std::string& text_file,
                                         const std::string& tokens_file, const std::string& tokenizer);
// The model's maximum sequence length from its metadata, or 0 when unknown.
int64_t max_sequence_length(const Model& m);
size_t weight_bytes(const Model& m);

}  // namespace llmc::cli
