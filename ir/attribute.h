// Node attributes: every ONNX attribute kind. Subgraphs, sparse tensors and type protos are
// kept opaque (their serialized bytes): passes do not look inside them, and the writer puts
// them back untouched.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "ir/tensor.h"

namespace llmc {

// Values equal ONNX AttributeProto.AttributeType codes.
enum class AttrKind : int32_t {
  kUndefined = 0,
  kFloat = 1,
  kInt = 2,
  kString = 3,
  kTensor = 4,
  kGraph = 5,
  kFloats = 6,
  kInts = 7,
  kStrings = 8,
  kTensors = 9,
  kGraphs = 10,
  kSparseTensor = 11,
  kSparseTensors = 12,
  kTypeProto = 13,
  kTypeProtos = 14,
};

struct Attribute {
  std::string name;
  AttrKind kind = AttrKind::kUndefined;
  float f = 0.f;
  int64_t i = 0;
  std::string s;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
  std::vector<Tensor> tensors;      // kTensor (one) and kTensors
  std::vector<std::string> opaque;  // serialized GraphProto / SparseTensorProto / TypeProto
  std::string ref_attr_name;        // set inside function bodies
  std::string doc_string;
  std::string extra_fields;  // see Node::extra_fields

  static Attribute make_int(std::string name, int64_t v);
  static Attribute make_float(std::string name, float v);
  static Attribute make_string(std::string name, std::string v);
  static Attribute make_ints(std::string name, std::vector<int64_t> v);
  static Attribute make_floats(std::string name, std::vector<float> v);
  static Attribute make_tensor(std::string name, Tensor t);

  bool operator==(const Attribute& o) const;
};

}  // namespace llmc
