// Tiny hand-built graphs shared by pass tests.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/graph_builder.h"  // tensor_value, sym, num

namespace llmc::testing {

// y = MatMul(x, w[4,4]); a dead MatMul(x, w2[4,2]) whose output nothing reads; an initializer
// "orphan" no node reads.
Model matmul_with_dead_branch();

// The inputs and outputs of a one-layer causal LM export (no nodes: only the interface matters
// to calibration data): input_ids, [attention_mask, position_ids,] past_key_values.0.key/value
// [b, 2, p, 4] -> logits [b, s, vocab].
Model tiny_lm_interface(int64_t vocab, bool mask_and_positions);

}  // namespace llmc::testing
