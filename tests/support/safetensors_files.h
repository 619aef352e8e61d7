// Building .safetensors files byte by byte for the tests of formats/safetensors: hand-made
// headers reach the refusals (bad lengths, dtypes, shapes, offsets) no real writer produces.
#pragma once
#include <string>
#include <vector>

#include "ir/tensor.h"

namespace llmc::testing {

// The 8-byte little-endian header length, `header`, then `data`.
std::string safetensors_bytes(const std::string& header, const std::string& data);
// A valid file holding `tensors` back to back, in order; `dtype_names` gives each one's
// safetensors dtype ("F32", "BF16"). The header is padded with spaces to a multiple of 8 bytes
// as Hugging Face's writer does, unless `pad_header` is false.
std::string make_safetensors(const std::vector<Tensor>& tensors,
                             const std::vector<std::string>& dtype_names, bool pad_header = true);
// Writes `bytes` to `dir`/`name` and returns the path.
std::string write_file_in(const std::string& dir, const std::string& name, const std::string& bytes);

}  // namespace llmc::testing
