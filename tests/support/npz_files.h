// Building .npy/.npz files byte by byte for the tests of formats/npz and tools/calibration_loader:
// hand-made zips reach refusals (compressed, duplicate, truncated members) numpy would not write.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "ir/tensor.h"

namespace llmc::testing {

// The bytes write_npy produces for `t`.
std::string npy_bytes(const Tensor& t);
// A minimal zip (no CRCs, which the reader does not check) of (member name, bytes), each stored
// with zip `method` (0 = stored, 8 = deflate; the bytes are not actually compressed).
std::string make_zip(const std::vector<std::pair<std::string, std::string>>& members, int method = 0);
// Writes `bytes` to `name` in a fresh scratch directory (so no file still mapped by an earlier
// read is overwritten) and returns the path.
std::string write_scratch_file(const std::string& name, const std::string& bytes);

}  // namespace llmc::testing
