#include "formats/hf_weights.h"

#include <algorithm>

#include "formats/gguf_quants.h"

namespace llmc {

namespace {

// Float32 copy of one row of a float32/float16/bfloat16 tensor.
void widen_row(const Tensor& t, int64_t row, int64_t cols, float* out) {
  const uint8_t* base = t.data();
  switch (t.dtype()) {
    case DType::kF32:
      std::copy_n(reinterpret_cast<const float*>(base) + row * cols, cols, out);
      break;
    case DType::kF16: ggml_dequantize(GgmlType::kF16, base + row * cols * 2, out, cols); break;
    case DType::kBF16: ggml_dequantize(GgmlType::kBF16, base + row * cols * 2, out, cols); break;
    default: break;  // refused by find()
  }
}

}  // namespace

Result<const Tensor*> HfWeights::find(const std::string& name, const std::vector<int64_t>& dims) const {
  const Tensor* t = ck_.find(name);
  if (!t) return invalid_input(source_, ": tensor '", name, "' is missing");
  if (t->dtype() != DType::kF32 && t->dtype() != DType::kF16 && t->dtype() != DType::kBF16)
    return unsupported(ck_.file_of(name), ": tensor '", name, "' is ", dtype_name(t->dtype()),
                       " (float32, float16 and bfloat16 weights are read)");
  if (t->dims() != dims)
    return invalid_input(ck_.file_of(name), ": tensor '", name, "' has shape ", shape_str(t->dims()), ", expected ",
                         shape_str(dims));
  return t;
}

Result<Tensor> HfWeights::plain(const std::string& name, std::vector<int64_t> dims, const std::string& as) const {
  LLMC_ASSIGN_OR_RETURN(const Tensor* t, find(name, dims));
  if (t->dtype() == DType::kF32) {
    Tensor v = *t;
    v.set_name(as);
    return v;
  }
  Tensor out = Tensor::uninitialized(as, DType::kF32, dims);
  const int64_t cols = dims.empty() ? 1 : dims.back(), rows = t->numel() / std::max<int64_t>(cols, 1);
  for (int64_t r = 0; r < rows; ++r) widen_row(*t, r, cols, reinterpret_cast<float*>(out.mutable_data()) + r * cols);
  return out;
}

Result<Tensor> HfWeights::linear(const std::string& name, int64_t out, int64_t in, const std::string& as,
                                 const std::vector<int64_t>& rows) const {
  LLMC_ASSIGN_OR_RETURN(const Tensor* t, find(name, {out, in}));
  Tensor result = Tensor::uninitialized(as, DType::kF32, {in, out});
  float* dst = reinterpret_cast<float*>(result.mutable_data());
  std::vector<float> row(static_cast<size_t>(in));
  for (int64_t c = 0; c < out; ++c) {
    widen_row(*t, rows.empty() ? c : rows[c], in, row.data());
    for (int64_t i = 0; i < in; ++i) dst[i * out + c] = row[i];
  }
  return result;
}

Result<Tensor> HfWeights::bias(const std::string& name, int64_t out, const std::string& as,
                               const std::vector<int64_t>& rows) const {
  LLMC_ASSIGN_OR_RETURN(Tensor b, plain(name, {out}, as));
  if (rows.empty()) return b;
  std::vector<float> v(static_cast<size_t>(out));
  for (int64_t c = 0; c < out; ++c) v[c] = b.data_as<float>()[rows[c]];
  return Tensor::from_vector(as, DType::kF32, {out}, v);
}

}  // namespace llmc
