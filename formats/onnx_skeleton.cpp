#include "formats/onnx_skeleton.h"

namespace llmc {

namespace {

// Field numbers in onnx.proto.
constexpr uint32_t kModelGraph = 7;
constexpr uint32_t kGraphInitializer = 5;
constexpr uint32_t kTensorRawData = 9;

class Wire {
 public:
  Wire(const uint8_t* base, size_t begin, size_t end) : base_(base), pos_(begin), end_(end) {}
  bool done() const { return pos_ >= end_; }
  size_t pos() const { return pos_; }

  bool varint(uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= end_) return false;
      const uint8_t b = base_[pos_++];
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) return true;
    }
    return false;
  }

  // Reads one field; for length-delimited fields sets [payload, payload_end).
  bool field(uint32_t& number, uint32_t& type, size_t& start, size_t& payload, size_t& payload_end) {
    start = pos_;
    uint64_t tag;
    if (!varint(tag)) return false;
    number = static_cast<uint32_t>(tag >> 3);
    type = static_cast<uint32_t>(tag & 7);
    uint64_t v;
    switch (type) {
      case 0: return varint(v);
      case 1: return skip(8);
      case 5: return skip(4);
      case 2:
        if (!varint(v) || v > end_ - pos_) return false;
        payload = pos_;
        payload_end = pos_ + v;
        pos_ += v;
        return true;
      default: return false;  // groups are not used by ONNX
    }
  }

 private:
  bool skip(size_t n) {
    if (n > end_ - pos_) return false;
    pos_ += n;
    return true;
  }
  const uint8_t* base_;
  size_t pos_, end_;
};

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

void put_message(std::string& out, uint32_t number, const std::string& body) {
  put_varint(out, (uint64_t(number) << 3) | 2);
  put_varint(out, body.size());
  out += body;
}

class Splitter {
 public:
  Splitter(const uint8_t* data, OnnxSkeleton& s) : data_(data), s_(s) {}

  bool tensor(size_t begin, size_t end, std::string& out) {
    Wire w(data_, begin, end);
    RawSpan span;
    while (!w.done()) {
      uint32_t num, type;
      size_t start, p = 0, pe = 0;
      if (!w.field(num, type, start, p, pe)) return false;
      if (num == kTensorRawData && type == 2) {
        span = {p, pe - p, true};  // the last occurrence wins, as in protobuf
        continue;
      }
      out.append(reinterpret_cast<const char*>(data_ + start), w.pos() - start);
    }
    s_.initializer_raw.push_back(span);
    return true;
  }

  bool graph(size_t begin, size_t end, std::string& out) {
    Wire w(data_, begin, end);
    while (!w.done()) {
      uint32_t num, type;
      size_t start, p = 0, pe = 0;
      if (!w.field(num, type, start, p, pe)) return false;
      if (num == kGraphInitializer && type == 2) {
        std::string t;
        if (!tensor(p, pe, t)) return false;
        put_message(out, num, t);
        continue;
      }
      out.append(reinterpret_cast<const char*>(data_ + start), w.pos() - start);
    }
    return true;
  }

  bool model(size_t size) {
    Wire w(data_, 0, size);
    while (!w.done()) {
      uint32_t num, type;
      size_t start, p = 0, pe = 0;
      if (!w.field(num, type, start, p, pe)) return false;
      if (num == kModelGraph && type == 2) {
        std::string g;
        if (!graph(p, pe, g)) return false;
        put_message(s_.bytes, num, g);
        continue;
      }
      s_.bytes.append(reinterpret_cast<const char*>(data_ + start), w.pos() - start);
    }
    return true;
  }

 private:
  const uint8_t* data_;
  OnnxSkeleton& s_;
};

}  // namespace

Result<OnnxSkeleton> split_onnx_skeleton(const uint8_t* data, size_t size) {
  OnnxSkeleton s;
  if (!Splitter(data, s).model(size))
    return invalid_input("not a valid ONNX model (protobuf parse failed: the file is truncated or not ONNX)");
  return s;
}

}  // namespace llmc
