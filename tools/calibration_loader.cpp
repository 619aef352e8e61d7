#include "tools/calibration_loader.h"

#include <algorithm>
#include <climits>
#include <vector>

#include "formats/mapped_file.h"
#include "formats/npy.h"
#include "formats/npz.h"

namespace llmc::cli {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// numpy.savez writes a zip whatever the file is called, so the signature decides too.
bool is_zip(const std::string& path) {
  auto f = MappedFile::open(path);
  return f.is_ok() && (*f)->size() >= 4 && std::equal((*f)->data(), (*f)->data() + 4, "PK\x03\x04");
}

// The text's tokens, stopping early once options.max_tokens exist (tokenizing a large corpus is
// the slow part, and the windows need only that many).
Result<std::vector<int32_t>> text_tokens(const std::string& path, const Tokenizer& tokenizer,
                                         const calib::CalibrationOptions& options) {
  LLMC_ASSIGN_OR_RETURN(auto file, MappedFile::open(path));
  const std::string text(reinterpret_cast<const char*>(file->data()), file->size());
  std::vector<int32_t> tokens = tokenizer.encode_corpus(text, options.max_tokens > 0 ? options.max_tokens : -1);
  if (tokens.empty())
    return invalid_input(path, ": no text to calibrate with (the file is empty or has only blank lines)");
  return tokens;
}

bool is_token_array(const Tensor& t) {
  return t.dims().size() == 1 && (t.dtype() == DType::kI32 || t.dtype() == DType::kI64);
}

// A token array's ids (is_token_array) as int32, what the windows hold; int64 ids must fit.
Result<std::vector<int32_t>> array_tokens(const std::string& path, const Tensor& t) {
  std::vector<int32_t> tokens(static_cast<size_t>(t.numel()));
  for (size_t i = 0; i < tokens.size(); ++i) {
    const int64_t v = t.dtype() == DType::kI32 ? t.data_as<int32_t>()[i] : t.data_as<int64_t>()[i];
    if (v < 0 || v > INT32_MAX) return invalid_input(path, ": token ", i, " is ", v, ", not a valid token id");
    tokens[i] = static_cast<int32_t>(v);
  }
  return tokens;
}

}  // namespace

Result<calib::CalibrationSet> load_calibration_file(const Model& model, const std::string& path,
                                                    const Tokenizer* tokenizer,
                                                    const calib::CalibrationOptions& options) {
  // read_npz and read_npy name the file in their errors; calibration_from_* prefix `path`.
  if (ends_with(path, ".npz") || is_zip(path)) {
    LLMC_ASSIGN_OR_RETURN(std::vector<Tensor> arrays, read_npz(path));
    return calib::calibration_from_tensors(model, arrays, options, path);
  }
  if (ends_with(path, ".npy")) {
    LLMC_ASSIGN_OR_RETURN(Tensor t, read_npy(path, "tokens"));
    if (is_token_array(t)) {
      LLMC_ASSIGN_OR_RETURN(std::vector<int32_t> tokens, array_tokens(path, t));
      return calib::calibration_from_tokens(model, tokens, options, path);
    }
    auto input = calib::lone_array_input(model, options);
    if (!input.is_ok()) return input.status().with_context(path);
    t.set_name(*input);
    return calib::calibration_from_tensors(model, {std::move(t)}, options, path);
  }
  if (!tokenizer)
    return invalid_input(path, ": a text calibration file needs a tokenizer, and the model carries none");
  LLMC_ASSIGN_OR_RETURN(std::vector<int32_t> tokens, text_tokens(path, *tokenizer, options));
  return calib::calibration_from_tokens(model, tokens, options, path);
}

}  // namespace llmc::cli
