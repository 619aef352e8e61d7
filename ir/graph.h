// Node, ValueInfo, Graph and Model: the IR every command shares. Values are named by strings,
// as in ONNX; GraphIndex (graph_utils.h) gives producer/consumer lookups when a pass needs them.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "ir/attribute.h"
#include "ir/tensor.h"

namespace llmc {

// One dimension of a value's shape: a number, a symbol ("batch"), or unknown.
struct Dim {
  int64_t value = -1;  // >= 0 when known
  std::string param;   // symbolic name when not a number
  std::string denotation;
  bool has_value() const { return value >= 0; }
  bool operator==(const Dim& o) const {
    return value == o.value && param == o.param && denotation == o.denotation;
  }
};

// The type of a graph input, output or intermediate value. Tensor types are understood;
// other types (sequence, map, optional, sparse) are kept opaque as serialized TypeProto bytes.
struct ValueType {
  enum class Kind { kNone, kTensor, kOpaque };
  Kind kind = Kind::kNone;
  DType elem = DType::kUndefined;
  bool has_shape = false;
  std::vector<Dim> dims;
  std::string denotation;
  std::string opaque;
  bool operator==(const ValueType& o) const {
    return kind == o.kind && elem == o.elem && has_shape == o.has_shape && dims == o.dims &&
           denotation == o.denotation && opaque == o.opaque;
  }
};

struct ValueInfo {
  std::string name;
  ValueType type;
  std::string doc_string;
  std::string extra_fields;  // see Node::extra_fields
  bool operator==(const ValueInfo& o) const {
    return name == o.name && type == o.type && doc_string == o.doc_string &&
           extra_fields == o.extra_fields;
  }
};

using StringPairs = std::vector<std::pair<std::string, std::string>>;

struct Node {
  std::string name;
  std::string op_type;
  std::string domain;  // "" is the default ONNX domain
  std::vector<std::string> inputs;   // "" marks an omitted optional input
  std::vector<std::string> outputs;  // "" marks an omitted optional output
  std::vector<Attribute> attributes;
  std::string doc_string;
  // Fields from ONNX versions newer than the reader's protobuf schema (e.g. `overload`,
  // `metadata_props` of IR 10), kept as serialized bytes and written back untouched.
  std::string extra_fields;
  // Outer-scope names read by this node's subgraphs; computed by the reader so ordering and
  // liveness see them. Not serialized.
  std::vector<std::string> implicit_inputs;

  const Attribute* find_attr(const std::string& attr_name) const;
  int64_t attr_int(const std::string& attr_name, int64_t fallback) const;
  float attr_float(const std::string& attr_name, float fallback) const;
  bool same_as(const Node& o) const;  // every serialized field equal
};

struct Graph {
  std::string name;
  std::string doc_string;
  std::vector<Node> nodes;  // kept in topological order
  std::vector<ValueInfo> inputs;
  std::vector<ValueInfo> outputs;
  std::vector<ValueInfo> value_info;
  std::vector<Tensor> initializers;
  std::vector<std::string> sparse_initializers;      // serialized SparseTensorProto, opaque
  std::vector<std::string> sparse_initializer_names;  // their value names
  std::vector<std::string> quantization_annotation;  // serialized, opaque
  std::string extra_fields;  // see Node::extra_fields

  const Tensor* find_initializer(const std::string& value_name) const;
  Tensor* find_initializer(const std::string& value_name);
  bool is_graph_input(const std::string& value_name) const;
};

struct OpsetImport {
  std::string domain;  // "" or "ai.onnx" for the default domain
  int64_t version = 0;
  bool operator==(const OpsetImport& o) const { return domain == o.domain && version == o.version; }
};

struct Model {
  int64_t ir_version = 8;
  std::vector<OpsetImport> opset_imports;
  std::string producer_name;
  std::string producer_version;
  std::string domain;
  int64_t model_version = 0;
  std::string doc_string;
  StringPairs metadata_props;
  Graph graph;
  std::vector<std::string> functions;      // serialized FunctionProto, opaque
  std::vector<std::string> training_info;  // serialized TrainingInfoProto, opaque
  std::string extra_fields;  // see Node::extra_fields

  // Opset version of `domain` ("" and "ai.onnx" are the same), or -1 when not imported.
  int64_t opset(const std::string& domain) const;
  void set_opset(const std::string& domain, int64_t version);
  const std::string* find_metadata(const std::string& key) const;
  void set_metadata(const std::string& key, std::string value);
};

}  // namespace llmc
