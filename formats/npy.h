// NumPy .npy files (format 1.0/2.0/3.0, little-endian, C order): enough to read model inputs
// and token files and to write outputs.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "formats/atomic_file.h"
#include "ir/status.h"
#include "ir/tensor.h"

namespace llmc {

// Reads a .npy into a Tensor named `name`. Supports <f4 <f8 <f2 <i1 <i2 <i4 <i8 |u1 <u2 <u4 <u8 |b1.
// Errors name the file: bad magic, unsupported dtype, Fortran order, size mismatch.
Result<Tensor> read_npy(const std::string& path, const std::string& name);
// One .npy image in memory (a mapped file, or a member of an .npz); `owner` keeps `data` alive
// for views. Errors do not name a file: the caller adds its context.
Result<Tensor> parse_npy_bytes(const uint8_t* data, size_t size, const std::string& name,
                               std::shared_ptr<const void> owner);
// Writes atomically (temp file + rename).
Status write_npy(const std::string& path, const Tensor& tensor);
// Writes the .npy bytes into `out`, leaving the commit to the caller (several files at once).
Status write_npy(AtomicFile& out, const Tensor& tensor);

}  // namespace llmc
