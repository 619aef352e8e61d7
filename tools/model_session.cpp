#include "tools/model_session.h"

#include <cctype>
#include <cstdlib>
#include <optional>

#include "ir/checked_math.h"
#include "ir/metadata_keys.h"
#include "formats/mapped_file.h"
#include "formats/model_loader.h"
#include "formats/npy.h"

namespace llmc::cli {

namespace {
// "512M", "16G", "1000": bytes with an optional binary suffix; nullopt when malformed or past 2^64.
std::optional<uint64_t> parse_bytes(std::string s) {
  int shift = 0;
  if (!s.empty()) {
    const char u = static_cast<char>(std::toupper(static_cast<unsigned char>(s.back())));
    const std::string units = "KMGT";
    if (const size_t i = units.find(u); i != std::string::npos) {
      shift = 10 * static_cast<int>(i + 1);
      s.pop_back();
    }
  }
  const auto v = parse_u64(s);
  if (!v || *v > (UINT64_MAX >> shift)) return std::nullopt;
  return *v << shift;
}
}  // namespace

Result<rt::MemoryLimits> memory_limits_from_env() {
  rt::MemoryLimits limits;
  for (auto [var, field] : {std::pair{"LLMC_MAX_TENSOR_BYTES", &limits.max_tensor_bytes},
                            std::pair{"LLMC_MAX_TOTAL_BYTES", &limits.max_total_bytes}}) {
    const char* v = std::getenv(var);
    if (!v) continue;
    const auto bytes = parse_bytes(v);
    if (!bytes || *bytes == 0)
      return invalid_input(var, "='", v, "' is not a positive byte count (e.g. 1000000, 512M, 16G)");
    *field = *bytes;
  }
  return limits;
}

std::string memory_limits_help() {
  const rt::MemoryLimits d;
  return "Memory limits: LLMC_MAX_TENSOR_BYTES (default " + std::to_string(d.max_tensor_bytes >> 30) +
         "G) bounds one tensor a kernel computes, LLMC_MAX_TOTAL_BYTES (default " +
         std::to_string(d.max_total_bytes >> 30) +
         "G) the activations alive at once; bytes or K/M/G/T. A size computed from input data beyond them is an "
         "error (exit 2) naming the node, not an allocation.";
}

Result<LoadedModel> open_model(const std::string& path, int threads, std::shared_ptr<rt::ThreadPool> pool) {
  LLMC_ASSIGN_OR_RETURN(const rt::MemoryLimits limits, memory_limits_from_env());
  LLMC_ASSIGN_OR_RETURN(Model m, load_model(path));
  LoadedModel lm;
  lm.path = path;
  lm.model = std::make_shared<const Model>(std::move(m));
  rt::SessionOptions options;
  options.threads = threads;
  options.pool = std::move(pool);
  options.limits = limits;
  auto session = rt::Session::create(lm.model, options);
  if (!session.is_ok()) return session.status().with_context(path);
  lm.session = std::move(session).value();
  return lm;
}

Result<std::unique_ptr<rt::Decoder>> open_decoder(const LoadedModel& m) {
  auto d = rt::Decoder::create(m.session);
  if (!d.is_ok()) return d.status().with_context(m.path);
  return d;
}

Result<std::vector<int32_t>> load_tokens(const LoadedModel& m, const std::string& text_file,
                                         const std::string& tokens_file, const std::string& tokenizer) {
  if (text_file.empty() == tokens_file.empty()) return invalid_input("give exactly one of --text or --tokens");
  if (!text_file.empty()) {
    LLMC_ASSIGN_OR_RETURN(auto tok, model_tokenizer(*m.model, m.path, tokenizer));
    LLMC_ASSIGN_OR_RETURN(auto f, MappedFile::open(text_file));
    auto ids = tok->encode_corpus(std::string(reinterpret_cast<const char*>(f->data()), f->size()));
    if (ids.empty()) return invalid_input(text_file, ": no text to tokenize");
    return ids;
  }
  LLMC_ASSIGN_OR_RETURN(Tensor t, read_npy(tokens_file, "tokens"));
  if (t.dims().size() != 1)
    return invalid_input(tokens_file, ": token file must be 1-D, got shape ", shape_str(t.dims()));
  if (t.dtype() != DType::kI32 && t.dtype() != DType::kI64)
    return invalid_input(tokens_file, ": token file must be int32 or int64, got ", dtype_name(t.dtype()));
  std::vector<int32_t> ids(static_cast<size_t>(t.numel()));
  for (size_t i = 0; i < ids.size(); ++i) {
    // Refused, not truncated: an int64 id past 2^31 would otherwise become some other token.
    const int64_t id = t.dtype() == DType::kI32 ? t.data_as<int32_t>()[i] : t.data_as<int64_t>()[i];
    if (id < 0 || id > INT32_MAX)
      return invalid_input(tokens_file, ": token ", i, " is ", id, ", not a valid token id (0 to 2^31 - 1)");
    ids[i] = static_cast<int32_t>(id);
  }
  return ids;
}

int64_t max_sequence_length(const Model& m) {
  const std::string* v = m.find_metadata(kMetaMaxSequenceLength);
  if (!v) return 0;
  try {
    return std::stoll(*v);
  } catch (const std::exception&) {
    return 0;
  }
}

size_t weight_bytes(const Model& m) {
  size_t n = 0;
  for (const auto& t : m.graph.initializers) n += t.nbytes();
  return n;
}

}  // namespace llmc::cli
