// Appends nodes and constants to a Graph with generated, unique, Hugging-Face-style names
// ("/model/layers.0/self_attn/MatMul" producing "..._output_0"). Used by importers and passes.
#pragma once
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/graph_utils.h"

namespace llmc {

// A typed tensor graph input/output; sym("batch") a symbolic dim, num(4) a fixed one.
ValueInfo tensor_value(const std::string& name, DType elem, std::vector<Dim> dims);
inline Dim sym(const char* s) { return Dim{-1, s, ""}; }
inline Dim num(int64_t n) { return Dim{n, "", ""}; }

class GraphBuilder {
 public:
  explicit GraphBuilder(Graph& graph) : graph_(graph), names_(graph) {}

  // Adds a node named `name` (made unique) and returns its output names.
  std::vector<std::string> add(const std::string& op_type, const std::string& name,
                               std::vector<std::string> inputs,
                               std::vector<Attribute> attributes = {}, int num_outputs = 1,
                               const std::string& domain = "");
  // Single-output shorthand.
  std::string op(const std::string& op_type, const std::string& name,
                 std::vector<std::string> inputs, std::vector<Attribute> attributes = {}) {
    return add(op_type, name, std::move(inputs), std::move(attributes))[0];
  }
  // Adds an initializer; renames it if the name is taken. Returns its name.
  std::string initializer(Tensor t);
  // Small constants as initializers.
  std::string const_i64(const std::string& name, std::vector<int64_t> values,
                        std::vector<int64_t> dims);
  std::string scalar_i64(const std::string& name, int64_t v) { return const_i64(name, {v}, {}); }
  std::string scalar_f32(const std::string& name, float v);
  std::string unique_name(const std::string& base) { return names_.make(base); }

 private:
  Graph& graph_;
  UniqueNames names_;
};

}  // namespace llmc
