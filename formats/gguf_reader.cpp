#include "formats/gguf_reader.h"

#include <cstring>
#include <limits>
#include <sstream>

namespace llmc {

namespace {

constexpr uint32_t kTypeU8 = 0, kTypeI8 = 1, kTypeU16 = 2, kTypeI16 = 3, kTypeU32 = 4, kTypeI32 = 5,
                   kTypeF32 = 6, kTypeBool = 7, kTypeString = 8, kTypeArray = 9, kTypeU64 = 10,
                   kTypeI64 = 11, kTypeF64 = 12;
constexpr int kMaxArrayDepth = 2;  // arrays of arrays at most, as llama.cpp's writer produces
constexpr int kMaxDims = 4;        // GGML_MAX_DIMS

// Reads little-endian values from the mapping; every read checks the bytes left first.
class Cursor {
 public:
  Cursor(const MappedFile& f) : data_(f.data()), size_(f.size()), path_(f.path()) {}
  size_t pos() const { return pos_; }
  size_t left() const { return size_ - pos_; }

  template <typename T>
  Result<T> read(const std::string& what) {
    if (left() < sizeof(T)) return truncated(what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  Result<std::string> read_string(const std::string& what) {
    LLMC_ASSIGN_OR_RETURN(uint64_t n, read<uint64_t>(what + " length"));
    if (n > left())
      return invalid_input(path_, ": ", what, " claims ", n, " bytes at offset ", pos_, " but ", left(),
                           " remain");
    std::string s(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return s;
  }
  Status truncated(const std::string& what) const {
    return invalid_input(path_, ": truncated at offset ", pos_, " reading ", what);
  }
  const std::string& path() const { return path_; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  std::string path_;
};

// Smallest encoded size of one value of `type` (bounds array counts before allocating).
size_t min_value_bytes(uint32_t type) {
  switch (type) {
    case kTypeU8: case kTypeI8: case kTypeBool: return 1;
    case kTypeU16: case kTypeI16: return 2;
    case kTypeU32: case kTypeI32: case kTypeF32: return 4;
    case kTypeString: case kTypeU64: case kTypeI64: case kTypeF64: return 8;
    case kTypeArray: return 12;
    default: return 1;
  }
}

Result<GgufValue> read_value(Cursor& c, uint32_t type, const std::string& key, int depth) {
  GgufValue v;
  v.type = type;
  auto integer = [&](auto raw) {
    v.kind = GgufValue::Kind::kInt;
    v.is_unsigned = std::is_unsigned_v<decltype(raw)>;
    v.i = static_cast<int64_t>(raw);
    v.u = static_cast<uint64_t>(raw);
  };
  const std::string what = "the value of '" + key + "'";
  switch (type) {
    case kTypeU8: { LLMC_ASSIGN_OR_RETURN(auto x, c.read<uint8_t>(what)); integer(x); break; }
    case kTypeI8: { LLMC_ASSIGN_OR_RETURN(auto x, c.read<int8_t>(what)); integer(x); break; }
    case kTypeU16: { LLMC_ASSIGN_OR_RETURN(auto x, c.read<uint16_t>(what)); integer(x); break; }
    case kTypeI16: { LLMC_ASSIGN_OR_RETURN(auto x, c.read<int16_t>(what)); integer(x); break; }
    case kTypeU32: { LLMC_ASSIGN_OR_RETURN(auto x, c.read<uint32_t>(what)); integer(x); break; }
    case kTypeI32: { LLMC_ASSIGN_OR_RETURN(auto x, c.read<int32_t>(what)); integer(x); break; }
    case kTypeU64: { LLMC_ASSIGN_OR_RETURN(auto x, c.read<uint64_t>(what)); integer(x); break; }
    case kTypeI64: { LLMC_ASSIGN_OR_RETURN(auto x, c.read<int64_t>(what)); integer(x); break; }
    case kTypeF32: {
      LLMC_ASSIGN_OR_RETURN(auto x, c.read<float>(what));
      v.kind = GgufValue::Kind::kFloat;
      v.f = x;
      break;
    }
    case kTypeF64: {
      LLMC_ASSIGN_OR_RETURN(auto x, c.read<double>(what));
      v.kind = GgufValue::Kind::kFloat;
      v.f = x;
      break;
    }
    case kTypeBool: {
      LLMC_ASSIGN_OR_RETURN(auto x, c.read<uint8_t>(what));
      if (x > 1) return invalid_input(c.path(), ": '", key, "' is a bool holding ", int(x));
      v.kind = GgufValue::Kind::kBool;
      v.b = x == 1;
      break;
    }
    case kTypeString: {
      LLMC_ASSIGN_OR_RETURN(v.s, c.read_string(what));
      v.kind = GgufValue::Kind::kString;
      break;
    }
    case kTypeArray: {
      if (depth >= kMaxArrayDepth)
        return invalid_input(c.path(), ": '", key, "' nests arrays deeper than ", kMaxArrayDepth);
      LLMC_ASSIGN_OR_RETURN(v.elem_type, c.read<uint32_t>("the element type of '" + key + "'"));
      LLMC_ASSIGN_OR_RETURN(uint64_t n, c.read<uint64_t>("the element count of '" + key + "'"));
      if (v.elem_type > kTypeF64)
        return invalid_input(c.path(), ": '", key, "' has unknown array element type ", v.elem_type);
      if (n > c.left() / min_value_bytes(v.elem_type))
        return invalid_input(c.path(), ": '", key, "' claims ", n, " elements but only ", c.left(),
                             " bytes remain");
      v.kind = GgufValue::Kind::kArray;
      v.items.reserve(static_cast<size_t>(n));
      for (uint64_t k = 0; k < n; ++k) {
        LLMC_ASSIGN_OR_RETURN(auto item, read_value(c, v.elem_type, key, depth + 1));
        v.items.push_back(std::move(item));
      }
      break;
    }
    default:
      return invalid_input(c.path(), ": '", key, "' has unknown value type ", type);
  }
  return v;
}

const char* kind_name(GgufValue::Kind k) {
  switch (k) {
    case GgufValue::Kind::kInt: return "an integer";
    case GgufValue::Kind::kFloat: return "a float";
    case GgufValue::Kind::kBool: return "a bool";
    case GgufValue::Kind::kString: return "a string";
    case GgufValue::Kind::kArray: return "an array";
  }
  return "?";
}

bool multiply_overflows(int64_t a, int64_t b, int64_t* out) { return __builtin_mul_overflow(a, b, out); }

}  // namespace

int64_t GgufTensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;  // checked when the file was opened
  return n;
}

bool looks_like_gguf(const MappedFile& file) {
  return file.size() >= 4 && std::memcmp(file.data(), "GGUF", 4) == 0;
}

Result<GgufFile> GgufFile::open(const std::string& path) {
  GgufFile g;
  LLMC_ASSIGN_OR_RETURN(g.file_, MappedFile::open(path));
  const MappedFile& f = *g.file_;
  if (!looks_like_gguf(f)) return invalid_input(path, ": not a GGUF file (no 'GGUF' magic)");
  Cursor c(f);
  LLMC_RETURN_IF_ERROR(c.read<uint32_t>("the magic").status());
  LLMC_ASSIGN_OR_RETURN(g.version_, c.read<uint32_t>("the version"));
  if (g.version_ != 2 && g.version_ != 3)
    return unsupported(path, ": GGUF version ", g.version_, " (versions 2 and 3 are read)");
  LLMC_ASSIGN_OR_RETURN(uint64_t n_tensors, c.read<uint64_t>("the tensor count"));
  LLMC_ASSIGN_OR_RETURN(uint64_t n_kv, c.read<uint64_t>("the metadata count"));
  if (n_kv > c.left() / 13)  // key length 8 + >=1 byte + type 4 + >=1 byte... at least 13
    return invalid_input(path, ": claims ", n_kv, " metadata entries but only ", c.left(), " bytes remain");
  for (uint64_t k = 0; k < n_kv; ++k) {
    LLMC_ASSIGN_OR_RETURN(std::string key, c.read_string(str_cat("metadata key ", k)));
    LLMC_ASSIGN_OR_RETURN(uint32_t type, c.read<uint32_t>("the type of '" + key + "'"));
    LLMC_ASSIGN_OR_RETURN(GgufValue v, read_value(c, type, key, 0));
    if (!g.metadata_.emplace(key, std::move(v)).second)
      return invalid_input(path, ": metadata key '", key, "' appears twice");
  }
  if (const GgufValue* a = g.find("general.alignment")) {
    if (a->kind != GgufValue::Kind::kInt || a->i <= 0 || a->i > (1 << 30) || (a->i & (a->i - 1)) != 0)
      return invalid_input(path, ": general.alignment must be a power of two, got ", gguf_value_to_string(*a));
    g.alignment_ = a->i;
  }
  if (n_tensors > c.left() / 28)  // name length 8 + n_dims 4 + dim 8 + type 4 + offset 8, at least
    return invalid_input(path, ": claims ", n_tensors, " tensors but only ", c.left(), " bytes remain");
  g.tensors_.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t k = 0; k < n_tensors; ++k) {
    GgufTensorInfo t;
    LLMC_ASSIGN_OR_RETURN(t.name, c.read_string(str_cat("the name of tensor ", k)));
    const std::string what = "tensor '" + t.name + "'";
    LLMC_ASSIGN_OR_RETURN(uint32_t n_dims, c.read<uint32_t>("the rank of " + what));
    if (n_dims < 1 || n_dims > kMaxDims)
      return invalid_input(path, ": ", what, " has rank ", n_dims, " (1 to ", kMaxDims, " allowed)");
    int64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      LLMC_ASSIGN_OR_RETURN(uint64_t dim, c.read<uint64_t>("the dimensions of " + what));
      if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          multiply_overflows(numel, static_cast<int64_t>(dim), &numel))
        return invalid_input(path, ": ", what, " has dimensions whose product overflows");
      t.ne.push_back(static_cast<int64_t>(dim));
    }
    LLMC_ASSIGN_OR_RETURN(uint32_t type, c.read<uint32_t>("the type of " + what));
    const auto info = ggml_type_info(type);
    if (!info) return unsupported(path, ": ", what, " has tensor type ", ggml_type_name(type), " (not supported)");
    t.type = static_cast<GgmlType>(type);
    if (t.ne[0] % info->block_size != 0)
      return invalid_input(path, ": ", what, " rows of ", t.ne[0], " are not whole ", info->name, " blocks of ",
                           info->block_size);
    const auto bytes = ggml_row_bytes(t.type, numel);
    if (!bytes) return invalid_input(path, ": ", what, " is too large");
    t.nbytes = *bytes;
    LLMC_ASSIGN_OR_RETURN(uint64_t offset, c.read<uint64_t>("the offset of " + what));
    if (offset % static_cast<uint64_t>(g.alignment_) != 0)
      return invalid_input(path, ": ", what, " offset ", offset, " is not a multiple of the alignment ", g.alignment_);
    if (offset > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return invalid_input(path, ": ", what, " offset ", offset, " is past the file");
    t.offset = static_cast<int64_t>(offset);
    if (!g.tensor_index_.emplace(t.name, g.tensors_.size()).second)
      return invalid_input(path, ": tensor '", t.name, "' appears twice");
    g.tensors_.push_back(std::move(t));
  }
  // The data section starts at the next multiple of the alignment.
  const uint64_t a = static_cast<uint64_t>(g.alignment_);
  const uint64_t start = (c.pos() + a - 1) / a * a;
  if (!g.tensors_.empty() && start > f.size())
    return invalid_input(path, ": truncated before the tensor data (", f.size(), " bytes)");
  g.data_start_ = static_cast<int64_t>(start);
  const uint64_t data_size = start <= f.size() ? f.size() - start : 0;
  for (const auto& t : g.tensors_) {
    if (static_cast<uint64_t>(t.offset) > data_size ||
        static_cast<uint64_t>(t.nbytes) > data_size - static_cast<uint64_t>(t.offset))
      return invalid_input(path, ": tensor '", t.name, "' (", t.nbytes, " bytes at data offset ", t.offset,
                           ") extends past the end of the file (", data_size, " data bytes)");
  }
  return g;
}

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = metadata_.find(key);
  return it == metadata_.end() ? nullptr : &it->second;
}

const GgufTensorInfo* GgufFile::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

Result<int64_t> GgufFile::get_int(const std::string& key, int64_t min, int64_t max) const {
  const GgufValue* v = find(key);
  if (!v) return invalid_input(path(), ": metadata '", key, "' is missing");
  if (v->kind != GgufValue::Kind::kInt)
    return invalid_input(path(), ": metadata '", key, "' is ", kind_name(v->kind), ", expected an integer");
  if ((v->is_unsigned && v->u > static_cast<uint64_t>(max)) || v->i < min || v->i > max)
    return invalid_input(path(), ": metadata '", key, "' = ", gguf_value_to_string(*v), " is outside [", min,
                         ", ", max, "]");
  return v->i;
}

Result<double> GgufFile::get_float(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return invalid_input(path(), ": metadata '", key, "' is missing");
  if (v->kind == GgufValue::Kind::kFloat) return v->f;
  if (v->kind == GgufValue::Kind::kInt) return v->is_unsigned ? double(v->u) : double(v->i);
  return invalid_input(path(), ": metadata '", key, "' is ", kind_name(v->kind), ", expected a number");
}

Result<std::string> GgufFile::get_string(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return invalid_input(path(), ": metadata '", key, "' is missing");
  if (v->kind != GgufValue::Kind::kString)
    return invalid_input(path(), ": metadata '", key, "' is ", kind_name(v->kind), ", expected a string");
  return v->s;
}

namespace {
template <typename T, typename Get>
Result<std::vector<T>> array_of(const GgufFile& g, const std::string& key, GgufValue::Kind want,
                                const char* want_name, Get get) {
  const GgufValue* v = g.find(key);
  if (!v) return invalid_input(g.path(), ": metadata '", key, "' is missing");
  if (v->kind != GgufValue::Kind::kArray)
    return invalid_input(g.path(), ": metadata '", key, "' is ", kind_name(v->kind), ", expected an array");
  std::vector<T> out;
  out.reserve(v->items.size());
  for (const auto& item : v->items) {
    if (item.kind != want && !(want == GgufValue::Kind::kFloat && item.kind == GgufValue::Kind::kInt))
      return invalid_input(g.path(), ": metadata '", key, "' holds ", kind_name(item.kind), ", expected ",
                           want_name);
    out.push_back(get(item));
  }
  return out;
}
}  // namespace

Result<std::vector<std::string>> GgufFile::get_strings(const std::string& key) const {
  return array_of<std::string>(*this, key, GgufValue::Kind::kString, "strings",
                               [](const GgufValue& v) { return v.s; });
}
Result<std::vector<int64_t>> GgufFile::get_ints(const std::string& key) const {
  return array_of<int64_t>(*this, key, GgufValue::Kind::kInt, "integers", [](const GgufValue& v) { return v.i; });
}
Result<std::vector<double>> GgufFile::get_floats(const std::string& key) const {
  return array_of<double>(*this, key, GgufValue::Kind::kFloat, "numbers", [](const GgufValue& v) {
    return v.kind == GgufValue::Kind::kFloat ? v.f : double(v.i);
  });
}

std::string gguf_value_to_string(const GgufValue& v, size_t max_items) {
  std::ostringstream os;
  switch (v.kind) {
    case GgufValue::Kind::kInt:
      if (v.is_unsigned) os << v.u; else os << v.i;
      break;
    case GgufValue::Kind::kFloat: os << v.f; break;
    case GgufValue::Kind::kBool: os << (v.b ? "true" : "false"); break;
    case GgufValue::Kind::kString: os << v.s; break;
    case GgufValue::Kind::kArray:
      if (v.items.size() > max_items) {
        os << "[" << v.items.size() << " items]";
      } else {
        os << "[";
        for (size_t k = 0; k < v.items.size(); ++k) os << (k ? ", " : "") << gguf_value_to_string(v.items[k], max_items);
        os << "]";
      }
      break;
  }
  return os.str();
}

}  // namespace llmc
