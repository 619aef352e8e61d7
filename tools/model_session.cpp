#include "tools/model_session.h"

#include "ir/metadata_keys.h"
#include "formats/mapped_file.h"
#include "formats/model_loader.h"
#include "formats/npy.h"

namespace llmc::cli {

Result<LoadedModel> open_model(const std::string& path, int threads, std::shared_ptr<rt::ThreadPool> pool) {
  LLMC_ASSIGN_OR_RETURN(Model m, load_model(path));
  LoadedModel lm;
  lm.path = path;
  lm.model = std::make_shared<const Model>(std::move(m));
  rt::SessionOptions options;
  options.threads = threads;
  options.pool = std::move(pool);
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
  std::vector<int32_t> ids(static_cast<size_t>(t.numel()));
  if (t.dtype() == DType::kI32) {
    std::copy(t.data_as<int32_t>(), t.data_as<int32_t>() + ids.size(), ids.begin());
  } else if (t.dtype() == DType::kI64) {
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(t.data_as<int64_t>()[i]);
  } else {
    return invalid_input(tokens_file, ": token file must be int32 or int64, got ", dtype_name(t.dtype()));
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
