// Tiny hand-built graphs shared by pass tests.
#pragma once
#include "ir/graph.h"

namespace llmc::testing {

// y = MatMul(x, w[4,4]); a dead MatMul(x, w2[4,2]) whose output nothing reads; an initializer
// "orphan" no node reads.
Model matmul_with_dead_branch();

}  // namespace llmc::testing
