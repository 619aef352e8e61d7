// GGUF files (llama.cpp's model format), versions 2 and 3, memory-mapped: metadata key/values,
// tensor infos, and each tensor's bytes in the data section. Every count, length and offset is
// checked against the file before use, so a hostile file gets an error naming the file and the
// key or tensor, never a read past the mapping.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "formats/gguf_quants.h"
#include "formats/mapped_file.h"
#include "ir/status.h"

namespace llmc {

// One metadata value. GGUF's value types: 0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32, 6 f32,
// 7 bool, 8 string, 9 array, 10 u64, 11 i64, 12 f64.
struct GgufValue {
  enum class Kind { kInt, kFloat, kBool, kString, kArray };
  Kind kind = Kind::kInt;
  uint32_t type = 0;       // the GGUF value type as written
  bool is_unsigned = false;
  int64_t i = 0;           // integers (u64 above INT64_MAX: is_unsigned and u holds it)
  uint64_t u = 0;
  double f = 0;
  bool b = false;
  std::string s;
  uint32_t elem_type = 0;  // arrays
  std::vector<GgufValue> items;
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> ne;  // GGML order: ne[0] is the contiguous (innermost) dimension
  GgmlType type = GgmlType::kF32;
  int64_t offset = 0;       // within the data section
  int64_t nbytes = 0;
  // Row-major dims as ONNX/numpy see them (ne reversed).
  std::vector<int64_t> dims() const { return {ne.rbegin(), ne.rend()}; }
  int64_t numel() const;
};

class GgufFile {
 public:
  static Result<GgufFile> open(const std::string& path);

  const std::string& path() const { return file_->path(); }
  uint32_t version() const { return version_; }
  int64_t alignment() const { return alignment_; }
  const std::map<std::string, GgufValue>& metadata() const { return metadata_; }
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufValue* find(const std::string& key) const;
  const GgufTensorInfo* find_tensor(const std::string& name) const;
  // The tensor's bytes (inside the mapping) and the mapping that keeps them alive.
  const uint8_t* tensor_data(const GgufTensorInfo& t) const { return file_->data() + data_start_ + t.offset; }
  std::shared_ptr<const MappedFile> mapping() const { return file_; }

  // Typed metadata lookups; errors name the file and key ("missing", "is a string, expected an
  // integer", out of range).
  Result<int64_t> get_int(const std::string& key, int64_t min, int64_t max) const;
  Result<double> get_float(const std::string& key) const;  // integers accepted too
  Result<std::string> get_string(const std::string& key) const;
  Result<std::vector<std::string>> get_strings(const std::string& key) const;
  Result<std::vector<int64_t>> get_ints(const std::string& key) const;
  Result<std::vector<double>> get_floats(const std::string& key) const;

 private:
  std::shared_ptr<const MappedFile> file_;
  uint32_t version_ = 0;
  int64_t alignment_ = 32;
  int64_t data_start_ = 0;
  std::map<std::string, GgufValue> metadata_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t> tensor_index_;
};

// True when the file starts with the GGUF magic.
bool looks_like_gguf(const MappedFile& file);

// A metadata value as text for `inspect` (arrays of more than `max_items` shown as their count).
std::string gguf_value_to_string(const GgufValue& v, size_t max_items = 8);

}  // namespace llmc
