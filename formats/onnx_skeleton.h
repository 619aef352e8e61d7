// Splits an ONNX file into a "skeleton" (the protobuf without initializers' raw_data payloads)
// and the file offsets of those payloads, by walking the protobuf wire format. Parsing only
// the skeleton keeps protobuf from copying every weight into a std::string: the reader then
// views the weights in the mapped file instead (or copies each into aligned memory once).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ir/status.h"

namespace llmc {

struct RawSpan {
  size_t offset = 0;
  size_t size = 0;
  bool present = false;
};

struct OnnxSkeleton {
  std::string bytes;                 // a valid ModelProto with raw_data removed from initializers
  std::vector<RawSpan> initializer_raw;  // per graph initializer, in order
};

// Fails on malformed wire data (truncated lengths, bad varints).
Result<OnnxSkeleton> split_onnx_skeleton(const uint8_t* data, size_t size);

}  // namespace llmc
