// NumPy .npz archives as numpy.savez writes them: a zip of `<key>.npy` members, STORED (no
// compression), with the zip64 extra fields numpy always writes. Compressed members
// (numpy.savez_compressed) are refused with a clear error rather than inflated.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ir/status.h"
#include "ir/tensor.h"

namespace llmc {

// The arrays in archive order, each named by its key (the member name without ".npy").
// Tensors view the mapped file when their data is aligned, else own a copy. Errors name the
// file and member: not a zip, truncated, encrypted or compressed member, a member that is not
// a .npy, duplicate keys, an unsupported dtype.
Result<std::vector<Tensor>> read_npz(const std::string& path);

}  // namespace llmc
