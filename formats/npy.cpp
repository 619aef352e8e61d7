#include "formats/npy.h"

#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <vector>

#include "formats/atomic_file.h"
#include "formats/mapped_file.h"

namespace llmc {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;
// numpy pads headers so the data starts on a 64-byte boundary (format.py ARRAY_ALIGN).
constexpr size_t kAlign = 64;

struct NpyType {
  const char* descr;  // as numpy writes it
  DType dtype;
  size_t itemsize;
};
constexpr NpyType kTypes[] = {
    {"<f4", DType::kF32, 4}, {"<f8", DType::kF64, 8}, {"<f2", DType::kF16, 2},
    {"|i1", DType::kI8, 1},  {"<i2", DType::kI16, 2}, {"<i4", DType::kI32, 4},
    {"<i8", DType::kI64, 8}, {"|u1", DType::kU8, 1},  {"<u2", DType::kU16, 2},
    {"<u4", DType::kU32, 4}, {"<u8", DType::kU64, 8}, {"|b1", DType::kBool, 1},
};

// The subset of Python literals numpy writes in a header: a dict of strings, booleans and
// tuples of ints (lists, None and nesting are parsed only so that they can be rejected clearly).
struct PyValue {
  enum Kind { kStr, kBool, kInt, kNone, kTuple, kList, kDict } kind = kNone;
  std::string str;
  bool boolean = false;
  int64_t integer = 0;
  std::vector<PyValue> items;                 // tuple, list
  std::map<std::string, PyValue> entries;     // dict
};

class HeaderParser {
 public:
  explicit HeaderParser(const std::string& s) : s_(s) {}
  Result<PyValue> parse_all() {
    LLMC_ASSIGN_OR_RETURN(PyValue v, parse_value(0));
    skip_space();
    if (pos_ != s_.size()) return fail("unexpected text after the header dict");
    return v;
  }

 private:
  Status fail(const std::string& what) const {
    return invalid_input("malformed header at offset ", pos_, ": ", what);
  }
  void skip_space() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' ||
                                s_[pos_] == '\r'))
      ++pos_;
  }
  bool eat(char c) {
    skip_space();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool eat_word(const char* w) {
    const size_t n = std::strlen(w);
    if (s_.compare(pos_, n, w) != 0) return false;
    pos_ += n;
    return true;
  }
  // Items separated by commas, optional trailing comma, up to `close`.
  template <typename F>
  Status parse_sequence(char close, F&& item) {
    while (!eat(close)) {
      LLMC_RETURN_IF_ERROR(item());
      if (!eat(',')) {
        if (!eat(close)) return fail(std::string("expected ',' or '") + close + "'");
        return Status::ok();
      }
    }
    return Status::ok();
  }
  Result<PyValue> parse_value(int depth) {
    if (depth > 8) return fail("nested too deeply");
    skip_space();
    if (pos_ >= s_.size()) return fail("unexpected end of header");
    PyValue v;
    const char c = s_[pos_];
    if (c == '\'' || c == '"') {
      ++pos_;
      const size_t end = s_.find(c, pos_);
      if (end == std::string::npos) return fail("unterminated string");
      v.kind = PyValue::kStr;
      v.str = s_.substr(pos_, end - pos_);
      pos_ = end + 1;
    } else if (c == '{') {
      ++pos_;
      v.kind = PyValue::kDict;
      LLMC_RETURN_IF_ERROR(parse_sequence('}', [&]() -> Status {
        LLMC_ASSIGN_OR_RETURN(PyValue key, parse_value(depth + 1));
        if (key.kind != PyValue::kStr) return fail("dict key is not a string");
        if (!eat(':')) return fail("expected ':' after dict key");
        LLMC_ASSIGN_OR_RETURN(v.entries[key.str], parse_value(depth + 1));
        return Status::ok();
      }));
    } else if (c == '(' || c == '[') {
      ++pos_;
      v.kind = c == '(' ? PyValue::kTuple : PyValue::kList;
      LLMC_RETURN_IF_ERROR(parse_sequence(c == '(' ? ')' : ']', [&]() -> Status {
        LLMC_ASSIGN_OR_RETURN(PyValue item, parse_value(depth + 1));
        v.items.push_back(std::move(item));
        return Status::ok();
      }));
    } else if (eat_word("True")) {
      v.kind = PyValue::kBool;
      v.boolean = true;
    } else if (eat_word("False")) {
      v.kind = PyValue::kBool;
    } else if (eat_word("None")) {
      v.kind = PyValue::kNone;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      const bool neg = c == '-';
      if (neg) ++pos_;
      if (pos_ >= s_.size() || s_[pos_] < '0' || s_[pos_] > '9') return fail("bad integer");
      uint64_t x = 0;
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
        x = x * 10 + static_cast<uint64_t>(s_[pos_++] - '0');
        if (x > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
          return fail("integer too large");
      }
      if (pos_ < s_.size() && s_[pos_] == 'L') ++pos_;  // Python 2 long suffix
      v.kind = PyValue::kInt;
      v.integer = neg ? -static_cast<int64_t>(x) : static_cast<int64_t>(x);
    } else {
      return fail(std::string("unexpected character '") + c + "'");
    }
    return v;
  }

  const std::string& s_;
  size_t pos_ = 0;
};

uint64_t read_le(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

Result<NpyType> type_from_descr(const std::string& descr) {
  const char order = descr.empty() ? 0 : descr[0];
  for (const NpyType& t : kTypes) {
    if (descr.size() < 2 || descr.compare(1, std::string::npos, t.descr + 1) != 0) continue;
    // Byte order is meaningless for one-byte types, so any marker is fine there.
    if (t.itemsize == 1 || order == '<' || order == '=') return t;
    if (order == '>') return unsupported("big-endian dtype '", descr, "' is not supported");
  }
  return unsupported("dtype '", descr,
                     "' is not supported (expected one of <f4 <f8 <f2 |i1 <i2 <i4 <i8 |u1 <u2 "
                     "<u4 <u8 |b1)");
}

// Parses magic, version and header dict; fills type, dims and data offset.
Status parse_npy(const uint8_t* data, size_t size, NpyType* type, std::vector<int64_t>* dims,
                 size_t* data_offset) {
  if (size < kMagicLen + 2 || std::memcmp(data, kMagic, kMagicLen) != 0)
    return invalid_input("not a .npy file (missing \\x93NUMPY magic)");
  const int major = data[kMagicLen], minor = data[kMagicLen + 1];
  if (major < 1 || major > 3 || minor != 0)
    return unsupported(".npy format version ", major, ".", minor, " is not supported");
  const int len_bytes = major == 1 ? 2 : 4;
  const size_t prefix = kMagicLen + 2 + len_bytes;
  if (size < prefix) return invalid_input("truncated .npy header");
  const uint64_t header_len = read_le(data + kMagicLen + 2, len_bytes);
  if (header_len > size - prefix)
    return invalid_input("truncated .npy header: header length ", header_len, " but only ",
                         size - prefix, " bytes follow");
  const std::string header(reinterpret_cast<const char*>(data + prefix), header_len);
  LLMC_ASSIGN_OR_RETURN(PyValue dict, HeaderParser(header).parse_all());
  if (dict.kind != PyValue::kDict) return invalid_input("header is not a dict");
  auto descr = dict.entries.find("descr");
  auto fortran = dict.entries.find("fortran_order");
  auto shape = dict.entries.find("shape");
  if (descr == dict.entries.end() || fortran == dict.entries.end() ||
      shape == dict.entries.end())
    return invalid_input("header dict lacks one of 'descr', 'fortran_order', 'shape'");
  if (descr->second.kind != PyValue::kStr)
    return unsupported("structured or non-string 'descr' is not supported");
  LLMC_ASSIGN_OR_RETURN(*type, type_from_descr(descr->second.str));
  if (fortran->second.kind != PyValue::kBool) return invalid_input("'fortran_order' is not a bool");
  if (shape->second.kind != PyValue::kTuple) return invalid_input("'shape' is not a tuple");
  dims->clear();
  int non_unit = 0;
  bool zero = false, overflow = false;
  uint64_t nbytes = type->itemsize;  // of the shape's data, unless it overflows
  for (const PyValue& d : shape->second.items) {
    if (d.kind != PyValue::kInt || d.integer < 0)
      return invalid_input("'shape' entries must be non-negative integers");
    dims->push_back(d.integer);
    if (d.integer > 1) ++non_unit;
    if (d.integer == 0) zero = true;
    overflow |= __builtin_mul_overflow(nbytes, static_cast<uint64_t>(d.integer), &nbytes);
  }
  if (zero) nbytes = 0, overflow = false;
  // With at most one dimension above 1, Fortran and C order lay the bytes out identically.
  if (fortran->second.boolean && non_unit > 1)
    return unsupported("Fortran-order arrays are not supported (save with np.ascontiguousarray)");
  *data_offset = prefix + header_len;
  const uint64_t available = size - *data_offset;
  if (overflow || nbytes != available)
    return invalid_input("size mismatch: shape ", shape_str(*dims), " of ", type->descr,
                         " needs ", overflow ? std::string("too many") : std::to_string(nbytes),
                         " data bytes, file has ", available,
                         nbytes > available ? " (truncated?)" : "");
  return Status::ok();
}

std::string dims_tuple(const std::vector<int64_t>& dims) {
  std::string s = "(";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  if (dims.size() == 1) s += ",";
  return s + ")";
}

}  // namespace

Result<Tensor> parse_npy_bytes(const uint8_t* data, size_t size, const std::string& name,
                               std::shared_ptr<const void> owner) {
  NpyType type{};
  std::vector<int64_t> dims;
  size_t offset = 0;
  LLMC_RETURN_IF_ERROR(parse_npy(data, size, &type, &dims, &offset));
  const size_t nbytes = size - offset;
  if (nbytes == 0) return Tensor::from_bytes(name, type.dtype, std::move(dims), nullptr, 0);
  const uint8_t* bytes = data + offset;
  // A mapped file is page-aligned, so the data is naturally aligned whenever the header length
  // keeps it so (always for numpy's 64-byte padding); otherwise copy, so data_as<T> is safe.
  if (reinterpret_cast<uintptr_t>(bytes) % type.itemsize == 0)
    return Tensor::view(name, type.dtype, std::move(dims), std::move(owner), bytes, nbytes);
  return Tensor::from_bytes(name, type.dtype, std::move(dims), bytes, nbytes);
}

Result<Tensor> read_npy(const std::string& path, const std::string& name) {
  LLMC_ASSIGN_OR_RETURN(auto file, MappedFile::open(path));
  auto t = parse_npy_bytes(file->data(), file->size(), name, file);
  if (!t.is_ok()) return t.status().with_context(path);
  return t;
}

Status write_npy(AtomicFile& out, const Tensor& tensor) {
  const std::string& path = out.path();
  const NpyType* type = nullptr;
  for (const NpyType& t : kTypes)
    if (t.dtype == tensor.dtype()) type = &t;
  if (!type)
    return unsupported(path, ": tensor '", tensor.name(), "' has dtype ",
                       dtype_name(tensor.dtype()), ", which has no .npy equivalent");
  for (int64_t d : tensor.dims())
    if (d < 0)
      return invalid_input(path, ": tensor '", tensor.name(), "' has negative dimension in ",
                           shape_str(tensor.dims()));
  if (tensor.nbytes() != tensor.expected_nbytes())
    return invalid_input(path, ": tensor '", tensor.name(), "' holds ", tensor.nbytes(),
                         " bytes but shape ", shape_str(tensor.dims()), " of ",
                         dtype_name(tensor.dtype()), " needs ", tensor.expected_nbytes());
  std::string dict = std::string("{'descr': '") + type->descr +
                     "', 'fortran_order': False, 'shape': " + dims_tuple(tensor.dims()) + ", }";
  // Version 1.0 stores the header length in 2 bytes; longer headers need 2.0 (4 bytes).
  // The dict is padded with spaces and a final '\n' so the data starts 64-byte aligned.
  auto padded_total = [&](size_t prefix) {
    return (prefix + dict.size() + 1 + kAlign - 1) / kAlign * kAlign;
  };
  int major = 1;
  size_t prefix = kMagicLen + 4;
  if (padded_total(prefix) - prefix > 65535) {
    major = 2;
    prefix = kMagicLen + 6;
  }
  const size_t total = padded_total(prefix);
  dict.append(total - prefix - dict.size() - 1, ' ');
  dict += '\n';
  std::string head(kMagic, kMagicLen);
  head += static_cast<char>(major);
  head += '\0';
  const uint64_t len = dict.size();
  for (size_t i = 0; i < prefix - kMagicLen - 2; ++i)
    head += static_cast<char>((len >> (8 * i)) & 0xFF);
  head += dict;
  LLMC_RETURN_IF_ERROR(out.write(head.data(), head.size()));
  if (tensor.nbytes() > 0) LLMC_RETURN_IF_ERROR(out.write(tensor.data(), tensor.nbytes()));
  return Status::ok();
}

Status write_npy(const std::string& path, const Tensor& tensor) {
  LLMC_ASSIGN_OR_RETURN(auto out, AtomicFile::create(path));
  LLMC_RETURN_IF_ERROR(write_npy(out, tensor));
  return out.commit();
}

}  // namespace llmc
