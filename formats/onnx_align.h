// Aligning inline weights inside an ONNX file, so a reader that maps the file can use them in
// place: our reader views a payload only when its offset suits the element type, and copies it
// otherwise (and the runtime can hand a viewed weight's pages back after packing it).
//
// Protobuf gives no control over where raw_data lands, so the initializer before each weight
// gets a padding field: an unknown TensorProto field (kOnnxPaddingField, bytes of zeros) that
// every ONNX reader skips. C++ protobuf writes known fields in field-number order and unknown
// fields last, which makes every payload offset computable from the sizes of the serialised
// pieces alone: the writer streams the file piece by piece (formats/onnx_writer.cpp), and the
// padding is decided from those sizes before the first byte is written. The first initializer
// has no predecessor and keeps its offset.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace llmc {

inline constexpr int kOnnxPaddingField = 1999;

// One initializer's TensorProto around its raw_data field (field 9).
struct InitializerLayout {
  size_t head = 0;       // serialised fields 1..8 (dims, data_type, ..., name)
  bool has_raw = false;  // raw_data is present (inline weights)
  size_t raw = 0;        // raw_data bytes
  size_t tail = 0;       // serialised fields after raw_data (doc_string, external data, ...), no padding
};

// The serialised pieces of a ModelProto whose graph's initializers are laid out as above.
struct ModelLayout {
  size_t model_head = 0;  // ModelProto fields 1..6 (before graph, field 7)
  size_t graph_head = 0;  // GraphProto fields 1..2 (node, name: before initializer, field 5)
  size_t graph_tail = 0;  // GraphProto fields after the initializers, and its unknown fields
  std::vector<InitializerLayout> initializers;
};

size_t varint_size(size_t v);
// Serialised TensorProto size with `padding` bytes of padding field appended.
size_t tensor_message_size(const InitializerLayout& t, size_t padding);
// Serialised GraphProto size with the given padding per initializer.
size_t graph_message_size(const ModelLayout& layout, const std::vector<size_t>& padding);

// Padding field bytes to append to each initializer (0, or 132..195) so every inline payload
// of at least `alignment` bytes (a power of two up to 64) starts at a file offset that is a
// multiple of `alignment`. Best effort: a layout that does not settle in a few rounds keeps
// what it has (the reader then copies those weights; nothing is lost).
std::vector<size_t> inline_payload_padding(const ModelLayout& layout, size_t alignment);

// The padding field of `total` bytes (132..195) as protobuf serialises it.
std::string padding_field(size_t total);

}  // namespace llmc
