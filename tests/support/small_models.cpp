#include "tests/support/small_models.h"

#include "ir/graph_builder.h"

namespace llmc::testing {

Model matmul_with_dead_branch() {
  Model m;
  m.set_opset("", 17);
  Graph& g = m.graph;
  ValueInfo x;
  x.name = "x";
  x.type.kind = ValueType::Kind::kTensor;
  x.type.elem = DType::kF32;
  g.inputs.push_back(x);
  g.initializers.push_back(Tensor::from_vector("w", DType::kF32, {4, 4}, std::vector<float>(16, 0.5f)));
  g.initializers.push_back(Tensor::from_vector("w2", DType::kF32, {4, 2}, std::vector<float>(8, 1.f)));
  g.initializers.push_back(Tensor::from_vector("orphan", DType::kF32, {3}, std::vector<float>{1, 2, 3}));
  GraphBuilder b(g);
  const std::string y = b.op("MatMul", "mm", {"x", "w"});
  b.op("MatMul", "dead", {"x", "w2"});
  ValueInfo out;
  out.name = y;
  g.outputs.push_back(out);
  return m;
}

}  // namespace llmc::testing
