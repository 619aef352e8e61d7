#include "formats/npz.h"

#include <cstring>
#include <set>

#include "formats/mapped_file.h"

namespace llmc {

namespace {

struct NpyType {
  const char* descr;
  DType dtype;
  size_t itemsize;
};
constexpr NpyType kTypes[] = {
    {"<f4", DType::kF32, 4}, {"<f8", DType::kF64, 8}, {"<f2", DType::kF16, 2},
    {"|i1", DType::kI8, 1},  {"<i2", DType::kI16, 2}, {"<i4", DType::kI32, 4},
    {"<i8", DType::kI64, 8}, {"|u1", DType::kU8, 1},  {"<u2", DType::kU16, 2},
    {"<u4", DType::kU32, 4}, {"<u8", DType::kU64, 8}, {"|b1", DType::kBool, 1},
};

uint64_t le(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Position just after `'key':` (either quote style) in a numpy header dict, or npos.
size_t value_of(const std::string& h, const std::string& key) {
  for (const char q : {'\'', '"'}) {
    const std::string k = std::string(1, q) + key + q;
    size_t p = h.find(k);
    if (p == std::string::npos) continue;
    p = h.find_first_not_of(" \t", p + k.size());
    if (p == std::string::npos || h[p] != ':') return std::string::npos;
    return h.find_first_not_of(" \t", p + 1);
  }
  return std::string::npos;
}

Status parse_header(const std::string& h, NpyType* type, bool* fortran, std::vector<int64_t>* dims) {
  size_t p = value_of(h, "descr");
  if (p == std::string::npos || (h[p] != '\'' && h[p] != '"')) return invalid_input("header has no string 'descr'");
  const size_t end = h.find(h[p], p + 1);
  if (end == std::string::npos) return invalid_input("unterminated 'descr'");
  const std::string descr = h.substr(p + 1, end - p - 1);
  bool found = false;
  for (const NpyType& t : kTypes) {
    if (descr.size() != 3 || descr.compare(1, 2, t.descr + 1) != 0) continue;
    if (t.itemsize > 1 && descr[0] == '>') return unsupported("big-endian dtype '", descr, "' is not supported");
    if (t.itemsize > 1 && descr[0] != '<' && descr[0] != '=') continue;
    *type = t;
    found = true;
  }
  if (!found) return unsupported("dtype '", descr, "' is not supported");
  p = value_of(h, "fortran_order");
  if (p == std::string::npos) return invalid_input("header has no 'fortran_order'");
  *fortran = h.compare(p, 4, "True") == 0;
  if (!*fortran && h.compare(p, 5, "False") != 0) return invalid_input("'fortran_order' is not True or False");
  p = value_of(h, "shape");
  if (p == std::string::npos || h[p] != '(') return invalid_input("header has no tuple 'shape'");
  const size_t close = h.find(')', p);
  if (close == std::string::npos) return invalid_input("unterminated 'shape'");
  dims->clear();
  for (size_t i = p + 1; i < close;) {
    if (h[i] == ' ' || h[i] == ',') {
      ++i;
      continue;
    }
    if (h[i] < '0' || h[i] > '9') return invalid_input("'shape' entries must be non-negative integers");
    int64_t d = 0;
    while (i < close && h[i] >= '0' && h[i] <= '9') {
      if (d > (int64_t{1} << 50)) return invalid_input("'shape' entry too large");
      d = d * 10 + (h[i++] - '0');
    }
    dims->push_back(d);
  }
  return Status::ok();
}

struct Member {
  std::string name;
  uint64_t offset = 0;  // of the local header
  uint64_t size = 0, compressed = 0;
  int method = 0;
  int flags = 0;
};

// Reads the central directory (zip64 aware).
Status read_directory(const uint8_t* d, size_t n, std::vector<Member>* members) {
  if (n < 22) return invalid_input("not a zip archive (", n, " bytes)");
  size_t eocd = std::string::npos;
  for (size_t i = n - 22 + 1; i-- > 0 && n - i <= 22 + 65535;)
    if (le(d + i, 4) == 0x06054b50) {
      eocd = i;
      break;
    }
  if (eocd == std::string::npos) return invalid_input("not a zip archive (no end-of-central-directory record)");
  uint64_t entries = le(d + eocd + 10, 2), cd_size = le(d + eocd + 12, 4), cd_off = le(d + eocd + 16, 4);
  if (entries == 0xFFFF || cd_size == 0xFFFFFFFF || cd_off == 0xFFFFFFFF) {
    if (eocd < 20 || le(d + eocd - 20, 4) != 0x07064b50) return invalid_input("zip64 locator missing");
    const uint64_t z = le(d + eocd - 20 + 8, 8);
    if (z + 56 > n || le(d + z, 4) != 0x06064b50) return invalid_input("zip64 end record missing");
    entries = le(d + z + 32, 8);
    cd_size = le(d + z + 40, 8);
    cd_off = le(d + z + 48, 8);
  }
  if (cd_off > n || cd_size > n - cd_off) return invalid_input("truncated archive (central directory out of bounds)");
  uint64_t p = cd_off;
  for (uint64_t e = 0; e < entries; ++e) {
    if (p + 46 > cd_off + cd_size || le(d + p, 4) != 0x02014b50) return invalid_input("corrupt central directory");
    Member m;
    m.flags = static_cast<int>(le(d + p + 8, 2));
    m.method = static_cast<int>(le(d + p + 10, 2));
    m.compressed = le(d + p + 20, 4);
    m.size = le(d + p + 24, 4);
    const uint64_t name_len = le(d + p + 28, 2), extra_len = le(d + p + 30, 2), comment_len = le(d + p + 32, 2);
    m.offset = le(d + p + 42, 4);
    if (p + 46 + name_len + extra_len > cd_off + cd_size) return invalid_input("corrupt central directory");
    m.name.assign(reinterpret_cast<const char*>(d + p + 46), name_len);
    // zip64 extra field: the 8-byte values of whichever fields are 0xFFFFFFFF, in this order.
    for (uint64_t x = p + 46 + name_len; x + 4 <= p + 46 + name_len + extra_len;) {
      const uint64_t id = le(d + x, 2), len = le(d + x + 2, 2);
      uint64_t f = x + 4;
      if (id == 1) {
        for (uint64_t* field : {&m.size, &m.compressed, &m.offset})
          if (*field == 0xFFFFFFFF && f + 8 <= x + 4 + len) *field = le(d + f, 8), f += 8;
      }
      x += 4 + len;
    }
    members->push_back(m);
    p += 46 + name_len + extra_len + comment_len;
  }
  return Status::ok();
}

}  // namespace

Result<Tensor> parse_npy_bytes(const uint8_t* data, size_t size, const std::string& name,
                               std::shared_ptr<const void> owner) {
  if (size < 10 || std::memcmp(data, "\x93NUMPY", 6) != 0) return invalid_input("not a .npy image (missing \\x93NUMPY magic)");
  const int major = data[6];
  if (major < 1 || major > 3) return unsupported(".npy format version ", major, " is not supported");
  const size_t prefix = major == 1 ? 10 : 12;
  if (size < prefix) return invalid_input("truncated .npy header");
  const uint64_t header_len = le(data + 8, major == 1 ? 2 : 4);
  if (header_len > size - prefix) return invalid_input("truncated .npy header");
  const std::string header(reinterpret_cast<const char*>(data + prefix), header_len);
  NpyType type{};
  bool fortran = false;
  std::vector<int64_t> dims;
  LLMC_RETURN_IF_ERROR(parse_header(header, &type, &fortran, &dims));
  int non_unit = 0;
  for (int64_t d : dims) non_unit += d > 1;
  if (fortran && non_unit > 1) return unsupported("Fortran-order arrays are not supported (save with np.ascontiguousarray)");
  const size_t offset = prefix + header_len;
  const uint64_t want = static_cast<uint64_t>(shape_numel(dims)) * type.itemsize;
  if (want != size - offset)
    return invalid_input("size mismatch: shape ", shape_str(dims), " of ", type.descr, " needs ", want,
                         " data bytes, the member has ", size - offset);
  const uint8_t* bytes = data + offset;
  if (want > 0 && reinterpret_cast<uintptr_t>(bytes) % type.itemsize == 0)
    return Tensor::view(name, type.dtype, dims, std::move(owner), bytes, want);
  return Tensor::from_bytes(name, type.dtype, dims, bytes, want);
}

Result<std::vector<Tensor>> read_npz(const std::string& path) {
  LLMC_ASSIGN_OR_RETURN(auto file, MappedFile::open(path));
  const uint8_t* d = file->data();
  const size_t n = file->size();
  std::vector<Member> members;
  Status s = read_directory(d, n, &members);
  if (!s.is_ok()) return s.with_context(path);
  std::vector<Tensor> out;
  std::set<std::string> seen;
  for (const Member& m : members) {
    auto fail = [&](const Status& st) { return st.with_context(path + ": member '" + m.name + "'"); };
    if (m.name.size() < 5 || m.name.compare(m.name.size() - 4, 4, ".npy") != 0)
      return fail(invalid_input("is not a .npy array (an .npz holds only <name>.npy members)"));
    if (m.flags & 1) return fail(unsupported("is encrypted"));
    if (m.method != 0)
      return fail(unsupported("is compressed (zip method ", m.method, m.method == 8 ? ", deflate" : "",
                              "); only numpy.savez archives (stored, uncompressed) are supported, "
                              "not numpy.savez_compressed: re-save with numpy.savez"));
    if (m.compressed != m.size) return fail(invalid_input("stored member has compressed size ", m.compressed, " != size ", m.size));
    if (m.offset > n || n - m.offset < 30 || le(d + m.offset, 4) != 0x04034b50)
      return fail(invalid_input("local header is missing or out of bounds (truncated archive?)"));
    const uint64_t data_at = m.offset + 30 + le(d + m.offset + 26, 2) + le(d + m.offset + 28, 2);
    if (data_at > n || n - data_at < m.size) return fail(invalid_input("data runs past the end of the file (truncated archive?)"));
    const std::string key = m.name.substr(0, m.name.size() - 4);
    if (!seen.insert(key).second) return fail(invalid_input("appears twice"));
    auto t = parse_npy_bytes(d + data_at, m.size, key, file);
    if (!t.is_ok()) return fail(t.status());
    out.push_back(std::move(t).value());
  }
  return out;
}

}  // namespace llmc
