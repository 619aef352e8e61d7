// Hugging Face safetensors checkpoints, read without copying: each tensor is a Tensor::view
// into the memory-mapped file, which the view keeps alive.
//
// File layout: an 8-byte little-endian header length N, N bytes of JSON
//   {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"format": "pt"}}
// then the data, with offsets counted from the byte after the header.
//
// Every header is checked before a view is made: the header lies inside the file and is a JSON
// object, dtypes are known, shapes are non-negative and their byte size does not overflow,
// offsets are ordered, inside the file and exactly numel * element size apart. Errors name the
// file and the tensor. Tensors may overlap or leave gaps between them: the reference reader
// rejects both, but views are read-only (copy-on-write), so neither can corrupt anything here.
// A tensor whose bytes are not aligned to its element size (a header length that is not a
// multiple of 8, which Hugging Face's writer never produces) is copied instead of viewed, so
// kernels can always read elements in place.
#pragma once
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ir/dtype.h"
#include "ir/status.h"
#include "ir/tensor.h"

namespace llmc {

class SafetensorsCheckpoint {
 public:
  // Tensors in file order (shards in the order the index first names them).
  const std::vector<Tensor>& tensors() const { return tensors_; }
  // The tensor named `name`, nullptr when absent.
  const Tensor* find(std::string_view name) const;
  // "__metadata__" string pairs of the first file, in file order.
  const std::vector<std::pair<std::string, std::string>>& metadata() const { return metadata_; }
  // The .safetensors files read, in order.
  const std::vector<std::string>& files() const { return files_; }
  // The file holding `name`, "" when absent.
  const std::string& file_of(std::string_view name) const;

 private:
  friend Result<SafetensorsCheckpoint> read_safetensors_file(const std::string& path);
  friend Result<SafetensorsCheckpoint> read_sharded_safetensors(const std::string& index_path);
  // Moves every tensor of `shard` in; a name already present is an error naming both files.
  Status append(SafetensorsCheckpoint&& shard);

  std::vector<Tensor> tensors_;
  std::vector<size_t> tensor_file_;                // tensors_[i] came from files_[tensor_file_[i]]
  std::unordered_map<std::string, size_t> index_;  // name -> position in tensors_
  std::vector<std::pair<std::string, std::string>> metadata_;
  std::vector<std::string> files_;
};

// One .safetensors file.
Result<SafetensorsCheckpoint> read_safetensors_file(const std::string& path);

// A sharded checkpoint through its index (model.safetensors.index.json): every shard its
// "weight_map" names is opened, from the index's directory. A missing shard, a tensor in two
// shards, or a tensor the index places in a shard that lacks it is an error; shard tensors the
// index omits are still read.
Result<SafetensorsCheckpoint> read_sharded_safetensors(const std::string& index_path);

// A checkpoint as Hugging Face lays it out. `dir_or_file` is one of
//  - a directory holding model.safetensors.index.json (read_sharded_safetensors),
//  - a directory holding model.safetensors,
//  - an index .json file, or a single .safetensors file.
Result<SafetensorsCheckpoint> open_safetensors_checkpoint(const std::string& dir_or_file);

// The IR type of a safetensors dtype name ("F32", "BF16", "F8_E4M3", ...). Names with no IR
// equivalent are refused by name.
Result<DType> safetensors_dtype(std::string_view name);

}  // namespace llmc
