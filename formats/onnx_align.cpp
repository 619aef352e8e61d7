#include "formats/onnx_align.h"

#include <google/protobuf/unknown_field_set.h>

#include <string>
#include <vector>

#include "onnx/onnx_pb.h"

namespace llmc {

namespace {

size_t varint_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) v >>= 7, ++n;
  return n;
}

// Serialised size of ModelProto fields 1..6 (they precede graph, field 7).
size_t model_prefix(const onnx::ModelProto& mp) {
  onnx::ModelProto head;
  if (mp.has_ir_version()) head.set_ir_version(mp.ir_version());
  if (mp.has_producer_name()) head.set_producer_name(mp.producer_name());
  if (mp.has_producer_version()) head.set_producer_version(mp.producer_version());
  if (mp.has_domain()) head.set_domain(mp.domain());
  if (mp.has_model_version()) head.set_model_version(mp.model_version());
  if (mp.has_doc_string()) head.set_doc_string(mp.doc_string());
  return head.ByteSizeLong();
}

// Serialised size of GraphProto fields 1..2 (node, name: they precede initializer, field 5),
// summed from the parts (copying the nodes would copy weights held in Constant attributes).
size_t graph_prefix(const onnx::GraphProto& g) {
  size_t size = 0;
  for (const auto& n : g.node()) {
    const size_t len = n.ByteSizeLong();
    size += 1 + varint_size(len) + len;  // tag of field 1 is one byte
  }
  if (g.has_name()) size += 1 + varint_size(g.name().size()) + g.name().size();
  return size;
}

// Serialised size of TensorProto fields 1..8 (they precede raw_data, field 9).
size_t tensor_prefix(const onnx::TensorProto& t) {
  onnx::TensorProto head;
  *head.mutable_dims() = t.dims();
  if (t.has_data_type()) head.set_data_type(t.data_type());
  if (t.has_segment()) *head.mutable_segment() = t.segment();
  *head.mutable_float_data() = t.float_data();
  *head.mutable_int32_data() = t.int32_data();
  *head.mutable_string_data() = t.string_data();
  *head.mutable_int64_data() = t.int64_data();
  if (t.has_name()) head.set_name(t.name());
  return head.ByteSizeLong();
}

// File offset of every initializer's raw_data payload (0 when it has none).
std::vector<size_t> payload_offsets(const onnx::ModelProto& mp) {
  const onnx::GraphProto& g = mp.graph();
  size_t pos = model_prefix(mp) + 1 + varint_size(g.ByteSizeLong()) + graph_prefix(g);
  std::vector<size_t> offsets;
  for (const auto& t : g.initializer()) {
    const size_t len = t.ByteSizeLong();
    pos += 1 + varint_size(len);
    offsets.push_back(t.has_raw_data() ? pos + tensor_prefix(t) + 1 + varint_size(t.raw_data().size()) : 0);
    pos += len;
  }
  return offsets;
}

// Padding field sizes 132..195 bytes (2-byte tag, 2-byte length, 128..191 zeros): the field's
// own length prefix never changes size, whatever shift it has to make.
constexpr size_t kPadBase = 132;

void set_padding(onnx::TensorProto& t, size_t total) {
  auto* unknown = t.GetReflection()->MutableUnknownFields(&t);
  for (int i = unknown->field_count() - 1; i >= 0; --i)
    if (unknown->field(i).number() == kOnnxPaddingField) unknown->DeleteSubrange(i, 1);
  if (total) unknown->AddLengthDelimited(kOnnxPaddingField, std::string(total - 4, '\0'));
}

}  // namespace

void align_inline_payloads(onnx::ModelProto& mp, size_t alignment) {
  // The padding field's 2-byte length prefix holds 128..191 zeros: alignments up to 64.
  if (alignment < 2 || alignment > 64 || (alignment & (alignment - 1))) return;
  auto& inits = *mp.mutable_graph()->mutable_initializer();
  const int n = inits.size();
  std::vector<size_t> pad(n, 0);  // padding field bytes appended to initializer i
  // Message lengths grow with the padding and can lengthen a varint, moving what follows; a
  // few rounds settle that (the first usually does).
  for (int round = 0; round < 8; ++round) {
    const std::vector<size_t> off = payload_offsets(mp);
    bool changed = false;
    size_t shift = 0;  // bytes this round's new padding moves the later payloads by
    for (int i = 1; i < n; ++i) {
      if (!off[i] || inits[i].raw_data().size() < alignment) continue;
      const size_t miss = (alignment - (off[i] + shift) % alignment) % alignment;
      if (miss == 0) continue;
      // Grow the previous initializer's padding by `miss` (mod alignment, within the size band).
      const size_t old = pad[i - 1];
      const size_t extra = old ? (old - kPadBase + miss) % alignment : (miss + alignment - kPadBase % alignment) % alignment;
      pad[i - 1] = kPadBase + extra;
      set_padding(inits[i - 1], pad[i - 1]);
      shift += pad[i - 1] - old;
      changed = true;
    }
    if (!changed) return;
  }
}

}  // namespace llmc
