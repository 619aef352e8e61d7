// Aligning inline weights inside an ONNX file, so a reader that maps the file can use them in
// place: our reader views a payload only when its offset suits the element type, and copies it
// otherwise (and the runtime can hand a viewed weight's pages back after packing it).
//
// Protobuf gives no control over where raw_data lands, so the initializer before each weight
// gets a padding field: an unknown TensorProto field (kOnnxPaddingField, bytes of zeros) that
// every ONNX reader skips. C++ protobuf writes known fields in field-number order and unknown
// fields last, which makes every payload offset computable from message sizes alone, without
// serialising the weights. The first initializer has no predecessor and keeps its offset.
#pragma once
#include <cstddef>

namespace onnx {
class ModelProto;
}

namespace llmc {

inline constexpr int kOnnxPaddingField = 1999;

// Pads `mp`'s inline initializers (raw_data of at least `alignment` bytes) to start at file
// offsets that are multiples of `alignment` (a power of two up to 64) when `mp` is serialised
// as a whole file. Best effort: a layout that does not settle in a few rounds stays as it is
// (the reader then copies those weights; nothing is lost).
void align_inline_payloads(onnx::ModelProto& mp, size_t alignment);

}  // namespace llmc
