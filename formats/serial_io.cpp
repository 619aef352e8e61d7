#include "formats/serial_io.h"

namespace llmc {

void put_varint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

void put_string(std::string_view s, std::string* out) {
  put_varint(s.size(), out);
  out->append(s);
}

Status SerialReader::varint(uint64_t limit, const char* field, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (pos_ >= bytes_.size()) return error("truncated in ", field);
    const uint8_t b = static_cast<uint8_t>(bytes_[pos_++]);
    *v |= uint64_t{b & 0x7Fu} << shift;
    if ((b & 0x80) == 0) {
      if (*v > limit) return error(field, " is ", *v, ", more than ", limit);
      return Status::ok();
    }
  }
  return error(field, " is not a valid varint");
}

Status SerialReader::string(const char* field, std::string* s) {
  uint64_t len;
  LLMC_RETURN_IF_ERROR(varint(remaining(), field, &len));
  s->assign(bytes_.substr(pos_, len));
  pos_ += len;
  return Status::ok();
}

}  // namespace llmc
