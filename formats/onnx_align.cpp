#include "formats/onnx_align.h"

namespace llmc {

namespace {

// Padding field sizes 132..195 bytes (2-byte tag, 2-byte length, 128..191 zeros): the field's
// own length prefix never changes size, whatever shift it has to make.
constexpr size_t kPadBase = 132;

void put_varint(std::string& out, size_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

// File offset of every initializer's raw_data payload (0 when it has none).
std::vector<size_t> payload_offsets(const ModelLayout& l, const std::vector<size_t>& pad) {
  size_t pos = l.model_head + 1 + varint_size(graph_message_size(l, pad)) + l.graph_head;
  std::vector<size_t> offsets;
  for (size_t i = 0; i < l.initializers.size(); ++i) {
    const InitializerLayout& t = l.initializers[i];
    const size_t len = tensor_message_size(t, pad[i]);
    pos += 1 + varint_size(len);
    offsets.push_back(t.has_raw ? pos + t.head + 1 + varint_size(t.raw) : 0);
    pos += len;
  }
  return offsets;
}

}  // namespace

size_t varint_size(size_t v) {
  size_t n = 1;
  while (v >= 0x80) v >>= 7, ++n;
  return n;
}

size_t tensor_message_size(const InitializerLayout& t, size_t padding) {
  return t.head + (t.has_raw ? 1 + varint_size(t.raw) + t.raw : 0) + t.tail + padding;
}

size_t graph_message_size(const ModelLayout& l, const std::vector<size_t>& padding) {
  size_t size = l.graph_head + l.graph_tail;
  for (size_t i = 0; i < l.initializers.size(); ++i) {
    const size_t len = tensor_message_size(l.initializers[i], padding[i]);
    size += 1 + varint_size(len) + len;  // tag of field 5 is one byte
  }
  return size;
}

std::vector<size_t> inline_payload_padding(const ModelLayout& l, size_t alignment) {
  const size_t n = l.initializers.size();
  std::vector<size_t> pad(n, 0);  // padding field bytes appended to initializer i
  // The padding field's 2-byte length prefix holds 128..191 zeros: alignments up to 64.
  if (alignment < 2 || alignment > 64 || (alignment & (alignment - 1))) return pad;
  // Message lengths grow with the padding and can lengthen a varint, moving what follows; a
  // few rounds settle that (the first usually does).
  for (int round = 0; round < 8; ++round) {
    const std::vector<size_t> off = payload_offsets(l, pad);
    bool changed = false;
    size_t shift = 0;  // bytes this round's new padding moves the later payloads by
    for (size_t i = 1; i < n; ++i) {
      if (!off[i] || l.initializers[i].raw < alignment) continue;
      const size_t miss = (alignment - (off[i] + shift) % alignment) % alignment;
      if (miss == 0) continue;
      // Grow the previous initializer's padding by `miss` (mod alignment, within the size band).
      const size_t old = pad[i - 1];
      const size_t extra = old ? (old - kPadBase + miss) % alignment : (miss + alignment - kPadBase % alignment) % alignment;
      pad[i - 1] = kPadBase + extra;
      shift += pad[i - 1] - old;
      changed = true;
    }
    if (!changed) break;
  }
  return pad;
}

std::string padding_field(size_t total) {
  std::string out;
  if (total < 4) return out;
  put_varint(out, (size_t(kOnnxPaddingField) << 3) | 2);
  put_varint(out, total - 4);
  out.append(total - 4, '\0');
  return out;
}

}  // namespace llmc
