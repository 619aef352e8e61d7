// Shared by the unstructured pruning passes (prune-magnitude, prune-wanda, prune-sparsegpt): which MatMul/Gemm
// weights are pruned, the mask from per-weight scores (by output row, layer, globally, or
// N:M along the input dimension) and the report. A pass supplies only its score.
//
// A weight W is [K, N] for MatMul (y = x W) and [N, K] for Gemm with transB: K is the input
// dimension, N the output rows. "row" groups are one output row's K weights (Wanda's group);
// N:M keeps at most N nonzeros in every M consecutive weights along K of one output row.
// Lowest scores are zeroed; ties go to the lower index, so masks are deterministic.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "passes/pass.h"

namespace llmc {

struct PruneTarget {
  size_t node = 0;           // index in graph.nodes
  std::string weight;        // initializer name
  bool trans = false;        // Gemm transB: weight stored [N, K]
  int64_t K = 0, N = 0;
  std::vector<size_t> sharers;  // other selected nodes reading the same weight alike (indices)
};

struct PruneOptions {
  double sparsity = 0.5;  // fraction zeroed (1 - n/m for a pattern)
  int n = 0, m = 0;       // N:M pattern when m > 0
  std::string scope;      // row | layer | global
  std::vector<std::string> op_types;
  std::string include, exclude;
};

// Options every pruning pass declares; `scope_default` differs (Wanda: row, magnitude: layer).
std::vector<OptionSpec> prune_option_specs(const std::string& scope_default);
Result<PruneOptions> parse_prune_options(const PassOptions& o);

// The weights to prune, with a decision for every MatMul/Gemm left alone (and why). The LM
// head (a product writing a graph output) stays dense unless `include` names it. A node that
// shares an earlier target's weight is not a target of its own: it gets an `action` decision
// naming the node it shares with (the low-rank passes select their weights here too).
Result<std::vector<PruneTarget>> select_prune_targets(const Model& model, const PruneOptions& options,
                                                      PassResult& result, const std::string& action = "pruned");

// score(i, k, n) >= 0 for element (input k, output row n) of targets[i]; called from `threads`
// threads at once (targets scored and masked in parallel, except the global scope's ranking).
// Zeroes the masked weights (copy-on-write: mapped input files are never written) and reports
// each one; the masks do not depend on the thread count.
using PruneScore = std::function<double(size_t target, int64_t k, int64_t n)>;
Status apply_pruning(Model& model, const std::vector<PruneTarget>& targets, const PruneOptions& options,
                     const PruneScore& score, const std::string& method, PassResult& result, int threads);

// The report apply_pruning ends with, for passes that write the weights themselves (SparseGPT
// also moves the kept ones): a "pruned" decision per target with the count its mask zeroed
// (`masked[i]`) and `notes[i]` appended, the summary, finish_result.
void report_pruning(const Model& model, const std::vector<PruneTarget>& targets, const PruneOptions& options,
                    const std::vector<int64_t>& masked, const std::vector<std::string>& notes, const std::string& method,
                    PassResult& result);

}  // namespace llmc
