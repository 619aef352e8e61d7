#include "formats/npz.h"

#include <cstring>
#include <set>

#include "formats/mapped_file.h"
#include "formats/npy.h"

namespace llmc {

namespace {

uint64_t le(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// A member name for an error line: control and non-ASCII bytes as \xNN, so a hostile name
// cannot break the one-line message or put raw bytes on a terminal.
std::string printable(const std::string& name) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (const unsigned char c : name) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
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
    // z comes from the file: compare without adding to it, so an offset near 2^64 cannot wrap.
    if (z > n || n - z < 56 || le(d + z, 4) != 0x06064b50) return invalid_input("zip64 end record missing");
    entries = le(d + z + 32, 8);
    cd_size = le(d + z + 40, 8);
    cd_off = le(d + z + 48, 8);
  }
  if (cd_off > n || cd_size > n - cd_off) return invalid_input("truncated archive (central directory out of bounds)");
  // Every record must lie within [cd_off, cd_end), which lies within the file: sizes from the
  // file are compared against what is left, never added to an offset first.
  const uint64_t cd_end = cd_off + cd_size;
  uint64_t p = cd_off;
  for (uint64_t e = 0; e < entries; ++e) {
    if (cd_end - p < 46 || le(d + p, 4) != 0x02014b50) return invalid_input("corrupt central directory");
    Member m;
    m.flags = static_cast<int>(le(d + p + 8, 2));
    m.method = static_cast<int>(le(d + p + 10, 2));
    m.compressed = le(d + p + 20, 4);
    m.size = le(d + p + 24, 4);
    const uint64_t name_len = le(d + p + 28, 2), extra_len = le(d + p + 30, 2), comment_len = le(d + p + 32, 2);
    m.offset = le(d + p + 42, 4);
    if (cd_end - p - 46 < name_len + extra_len + comment_len) return invalid_input("corrupt central directory");
    m.name.assign(reinterpret_cast<const char*>(d + p + 46), name_len);
    auto fail = [&](const std::string& what) {
      return invalid_input("member '", printable(m.name), "': ", what);
    };
    // zip64 extra field: the 8-byte values of whichever fields are 0xFFFFFFFF, in this order.
    const uint64_t extra_end = p + 46 + name_len + extra_len;
    for (uint64_t x = p + 46 + name_len; x < extra_end;) {
      if (extra_end - x < 4) return fail("extra field header runs past its record");
      const uint64_t id = le(d + x, 2), len = le(d + x + 2, 2);
      if (len > extra_end - x - 4) return fail("extra field runs past its record");
      uint64_t f = x + 4;
      if (id == 1) {
        for (uint64_t* field : {&m.size, &m.compressed, &m.offset}) {
          if (*field != 0xFFFFFFFF) continue;
          if (f + 8 > x + 4 + len) return fail("zip64 extra field is too short for the sizes it replaces");
          *field = le(d + f, 8);
          f += 8;
        }
      }
      x += 4 + len;
    }
    members->push_back(m);
    p += 46 + name_len + extra_len + comment_len;
  }
  return Status::ok();
}

}  // namespace

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
    auto fail = [&](const Status& st) { return st.with_context(path + ": member '" + printable(m.name) + "'"); };
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
    const uint64_t data_at = m.offset + 30 + le(d + m.offset + 26, 2) + le(d + m.offset + 28, 2);  // < n + 2^17
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
