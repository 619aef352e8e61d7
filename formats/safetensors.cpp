// One .safetensors file: the header is validated entry by entry before any view is made, so a
// hostile file fails with a message instead of handing out bytes past the mapping.
#include "formats/safetensors.h"

#include <cstdint>
#include <memory>

#include "formats/json.h"
#include "formats/mapped_file.h"

namespace llmc {

namespace {

constexpr size_t kLengthBytes = 8;  // the little-endian u64 before the header
constexpr std::string_view kMetadataKey = "__metadata__";

struct DTypeName {
  std::string_view name;
  DType dtype;
};
constexpr DTypeName kDTypeNames[] = {
    {"F64", DType::kF64},   {"F32", DType::kF32},          {"F16", DType::kF16},
    {"BF16", DType::kBF16}, {"I64", DType::kI64},          {"I32", DType::kI32},
    {"I16", DType::kI16},   {"I8", DType::kI8},            {"U64", DType::kU64},
    {"U32", DType::kU32},   {"U16", DType::kU16},          {"U8", DType::kU8},
    {"BOOL", DType::kBool}, {"F8_E4M3", DType::kF8E4M3FN}, {"F8_E5M2", DType::kF8E5M2},
    {"F8_E8M0", DType::kF8E8M0},
};
// Names the safetensors format defines that have no IR type (sub-byte floats it counts per
// element rather than per packed byte, complex).
constexpr std::string_view kUnmappedDTypes[] = {"F6_E2M3", "F6_E3M2", "F4", "C64"};

uint64_t read_le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// One header entry, checked against the data section of `data_size` bytes.
struct TensorEntry {
  DType dtype = DType::kUndefined;
  std::vector<int64_t> dims;
  uint64_t begin = 0, nbytes = 0;
};

Result<std::vector<int64_t>> parse_shape(const JsonValue* shape) {
  if (!shape || !shape->is_array()) return invalid_input("\"shape\" is missing or not an array");
  std::vector<int64_t> dims;
  int64_t numel = 1;
  for (const JsonValue& d : shape->as_array()) {
    const std::optional<int64_t> n = d.as_int();
    if (!n) return invalid_input("shape entry is not an integer that fits int64");
    if (*n < 0) return invalid_input("negative dimension ", *n, " in shape");
    dims.push_back(*n);
    if (__builtin_mul_overflow(numel, *n, &numel))
      return invalid_input("shape ", shape_str(dims), "... has more elements than int64 holds");
  }
  return dims;
}

Result<TensorEntry> parse_entry(const JsonValue& entry, uint64_t data_size) {
  if (!entry.is_object()) return invalid_input("entry is not a JSON object");
  const JsonValue* dtype = entry.find("dtype");
  if (!dtype || !dtype->is_string()) return invalid_input("\"dtype\" is missing or not a string");
  TensorEntry t;
  LLMC_ASSIGN_OR_RETURN(t.dtype, safetensors_dtype(dtype->as_string()));
  LLMC_ASSIGN_OR_RETURN(t.dims, parse_shape(entry.find("shape")));

  // Every mapped dtype is a whole number of bytes wide.
  const auto element_bytes = static_cast<uint64_t>(dtype_bits(t.dtype) / 8);
  uint64_t need = 0;
  if (__builtin_mul_overflow(static_cast<uint64_t>(shape_numel(t.dims)), element_bytes, &need))
    return invalid_input("shape ", shape_str(t.dims), " of ", dtype->as_string(),
                         " needs more bytes than 64 bits count");

  const JsonValue* offsets = entry.find("data_offsets");
  if (!offsets || !offsets->is_array() || offsets->as_array().size() != 2)
    return invalid_input("\"data_offsets\" is missing or not [begin, end]");
  const std::optional<int64_t> begin = offsets->as_array()[0].as_int();
  const std::optional<int64_t> end = offsets->as_array()[1].as_int();
  if (!begin || !end || *begin < 0 || *end < 0)
    return invalid_input("data_offsets are not non-negative integers");
  if (*begin > *end) return invalid_input("data_offsets [", *begin, ", ", *end, "] are out of order");
  if (static_cast<uint64_t>(*end) > data_size)
    return invalid_input("data_offsets end ", *end, " is past the end of the file (", data_size,
                         " data bytes after the header)");
  t.begin = static_cast<uint64_t>(*begin);
  t.nbytes = static_cast<uint64_t>(*end - *begin);
  if (t.nbytes != need)
    return invalid_input("data_offsets span ", t.nbytes, " bytes but ", dtype->as_string(), " ",
                         shape_str(t.dims), " needs ", need);
  return t;
}

Result<std::vector<std::pair<std::string, std::string>>> parse_metadata(const JsonValue& meta) {
  if (!meta.is_object()) return invalid_input("\"__metadata__\" is not a JSON object");
  std::vector<std::pair<std::string, std::string>> pairs;
  for (const auto& [key, value] : meta.as_object()) {
    if (!value.is_string())
      return invalid_input("\"__metadata__\" value of ", json_quote(key), " is not a string");
    pairs.emplace_back(key, value.as_string());
  }
  return pairs;
}

}  // namespace

Result<DType> safetensors_dtype(std::string_view name) {
  for (const DTypeName& d : kDTypeNames)
    if (d.name == name) return d.dtype;
  for (std::string_view unmapped : kUnmappedDTypes)
    if (unmapped == name) return unsupported("dtype ", name, " has no equivalent in the IR");
  return invalid_input("unknown dtype ", json_quote(name));
}

Result<SafetensorsCheckpoint> read_safetensors_file(const std::string& path) {
  LLMC_ASSIGN_OR_RETURN(std::shared_ptr<const MappedFile> file, MappedFile::open(path));
  const uint64_t size = file->size();
  if (size < kLengthBytes)
    return invalid_input(path, ": ", size, " bytes is too short for a safetensors file (it opens ",
                         "with an 8-byte header length)");
  const uint64_t header_size = read_le64(file->data());
  if (header_size > size - kLengthBytes)
    return invalid_input(path, ": header length ", header_size, " runs past the end of the file (",
                         size, " bytes)");
  const std::string_view header_text(reinterpret_cast<const char*>(file->data()) + kLengthBytes,
                                     header_size);
  LLMC_ASSIGN_OR_RETURN(JsonValue header, parse_json(header_text, path + " header"));
  if (!header.is_object()) return invalid_input(path, ": header is not a JSON object");

  const uint8_t* data = file->data() + kLengthBytes + header_size;
  const uint64_t data_size = size - kLengthBytes - header_size;
  SafetensorsCheckpoint checkpoint;
  checkpoint.files_.push_back(path);
  for (const auto& [name, entry] : header.as_object()) {
    if (name == kMetadataKey) {
      auto metadata = parse_metadata(entry);
      if (!metadata.is_ok()) return metadata.status().with_context(path);
      checkpoint.metadata_ = std::move(metadata).value();
      continue;
    }
    auto parsed = parse_entry(entry, data_size);
    if (!parsed.is_ok()) return parsed.status().with_context(path + ": tensor " + json_quote(name));
    TensorEntry& t = parsed.value();
    const uint8_t* bytes = data + t.begin;
    const size_t element_bytes = static_cast<size_t>(dtype_bits(t.dtype) / 8);
    // A view only where elements are aligned; see the header comment.
    Tensor tensor = reinterpret_cast<uintptr_t>(bytes) % element_bytes == 0
                        ? Tensor::view(name, t.dtype, std::move(t.dims), file, bytes, t.nbytes)
                        : Tensor::from_bytes(name, t.dtype, std::move(t.dims), bytes, t.nbytes);
    // Names are unique: the JSON parser refuses duplicate keys.
    checkpoint.index_.emplace(name, checkpoint.tensors_.size());
    checkpoint.tensors_.push_back(std::move(tensor));
    checkpoint.tensor_file_.push_back(0);
  }
  return checkpoint;
}

const Tensor* SafetensorsCheckpoint::find(std::string_view name) const {
  const auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const std::string& SafetensorsCheckpoint::file_of(std::string_view name) const {
  static const std::string kNone;
  const auto it = index_.find(std::string(name));
  return it == index_.end() ? kNone : files_[tensor_file_[it->second]];
}

Status SafetensorsCheckpoint::append(SafetensorsCheckpoint&& shard) {
  if (files_.empty()) metadata_ = std::move(shard.metadata_);
  const size_t first_file = files_.size();
  for (std::string& f : shard.files_) files_.push_back(std::move(f));
  for (size_t i = 0; i < shard.tensors_.size(); ++i) {
    Tensor& t = shard.tensors_[i];
    if (const auto it = index_.find(t.name()); it != index_.end())
      return invalid_input("tensor ", json_quote(t.name()), " is in two shards: ",
                           files_[tensor_file_[it->second]], " and ",
                           files_[first_file + shard.tensor_file_[i]]);
    index_.emplace(t.name(), tensors_.size());
    tensors_.push_back(std::move(t));
    tensor_file_.push_back(first_file + shard.tensor_file_[i]);
  }
  return Status::ok();
}

}  // namespace llmc
