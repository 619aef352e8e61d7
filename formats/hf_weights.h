// The weights of a Hugging Face checkpoint as the graph builders want them: looked up by name,
// checked for dtype (float32, float16, bfloat16) and shape, widened to float32, and Linear
// weights transposed from PyTorch's [out, in] to MatMul's [in, out]. Errors name the tensor and
// the file holding it.
#pragma once
#include <string>
#include <vector>

#include "formats/safetensors.h"
#include "ir/status.h"
#include "ir/tensor.h"

namespace llmc {

class HfWeights {
 public:
  // `source` (config.json's path) names missing tensors in errors.
  HfWeights(const SafetensorsCheckpoint& ck, std::string source) : ck_(ck), source_(std::move(source)) {}

  // The stored tensor, checked to be a float of shape `dims`.
  Result<const Tensor*> find(const std::string& name, const std::vector<int64_t>& dims) const;
  // A tensor as stored, float32 (a view when it already is), named `as`.
  Result<Tensor> plain(const std::string& name, std::vector<int64_t> dims, const std::string& as) const;
  // Linear weight [out, in] -> MatMul B [in, out], output column c taken from stored row
  // rows[c] (identity when `rows` is empty).
  Result<Tensor> linear(const std::string& name, int64_t out, int64_t in, const std::string& as,
                        const std::vector<int64_t>& rows = {}) const;
  // A bias [out], entries reordered like linear()'s columns.
  Result<Tensor> bias(const std::string& name, int64_t out, const std::string& as,
                      const std::vector<int64_t>& rows = {}) const;
  bool has(const std::string& name) const { return ck_.find(name) != nullptr; }

 private:
  const SafetensorsCheckpoint& ck_;
  std::string source_;
};

}  // namespace llmc
