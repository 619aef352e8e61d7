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


Model tiny_lm_interface(int64_t vocab, bool mask_and_positions) {
  Model m;
  m.graph.inputs = {tensor_value("input_ids", DType::kI64, {sym("b"), sym("s")})};
  if (mask_and_positions) {
    m.graph.inputs.push_back(tensor_value("attention_mask", DType::kI64, {sym("b"), sym("t")}));
    m.graph.inputs.push_back(tensor_value("position_ids", DType::kI32, {sym("b"), sym("s")}));
  }
  for (const char* kv : {"past_key_values.0.key", "past_key_values.0.value"})
    m.graph.inputs.push_back(tensor_value(kv, DType::kF32, {sym("b"), num(2), sym("p"), num(4)}));
  m.graph.outputs = {tensor_value("logits", DType::kF32, {sym("b"), sym("s"), num(vocab)})};
  return m;
}

}  // namespace llmc::testing
