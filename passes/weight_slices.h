// Structured pruning's one weight edit: keep some rows or columns of a float32 matrix (or
// entries of a vector), in order, replacing the initializer (a new tensor: a mapped input file
// is never written).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace llmc {

// `keep` sorted indices along `axis` (0: rows, 1: columns; ignored for a vector).
void keep_slices(Graph& g, const std::string& initializer, const std::vector<int64_t>& keep, int axis);

}  // namespace llmc
