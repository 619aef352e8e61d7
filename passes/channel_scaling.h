// Per-input-channel rescaling of the MatMuls that read one activation, shared by smooth-quant and
// awq-scale (they differ only in how s is chosen):
//
//   Y_i = MatMul(X, W_i)  →  Y_i = MatMul(X / s, diag(s) W_i)   (the same function, up to rounding)
//
// X / s is folded into X's producer when X has no other readers:
//   X = Mul(gamma, y) or Mul(y, gamma), gamma a 1-D [K] initializer          -> gamma / s
//   X = LayerNormalization / SimplifiedLayerNormalization / RMSNormalization(y, scale[, bias])
//                                                                             -> scale / s, bias / s
//   (fold_into_matmul) X = Mul(a, b), b = MatMul(z, V) read only by this Mul, V constant [*, K]
//     (a Llama MLP's silu(gate) · up feeding down_proj)                       -> columns of V / s
// and is otherwise a new Mul(X, 1/s) feeding the group. A weight or norm scale also read outside
// the group is copied, never changed in place; mapped input files are never written.
#pragma once
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "ir/graph_rewrite.h"
#include "ir/graph_utils.h"
#include "passes/pass.h"
#include "passes/quant_utils.h"

namespace llmc {

struct ScaledMember {
  int node = -1;
  bool trans = false;  // weight stored [N, K] (Gemm transB=1)
};

struct ScaleGroup {
  std::string x;  // the activation
  int64_t channels = 0;
  std::vector<ScaledMember> members;
};

// MatMul/Gemm nodes (of `op_types`, transA = 0) reading a computed activation with a constant
// 2-D float32 weight, grouped by that activation, in graph order. Every other MatMul/Gemm, and
// every one `filter` excludes, gets a "skipped" decision in `result` (and why).
std::vector<ScaleGroup> scale_groups(const Graph& g, const std::set<std::string>& op_types, NodeFilter& filter,
                                     PassResult& result);

class ChannelScaler {
 public:
  ChannelScaler(Graph& g, bool fold_into_matmul);
  // Whether 1/s of `grp` folds into X's producer (else apply() inserts a Mul).
  bool foldable(const ScaleGroup& grp) const;
  // Applies s (K positive values) to the group; returns where 1/s went ("1/s folded into
  // RMSNormalization 'n'" or "1/s applied by an inserted Mul 'm'").
  std::string apply(const ScaleGroup& grp, const std::vector<float>& s);
  // Emits the inserted Muls before their groups and commits the graph.
  void commit();
  int64_t folded() const { return folded_; }
  int64_t inserted() const { return inserted_; }

 private:
  struct Fold {
    int producer = -1;
    std::vector<size_t> slots;  // the producer's input slots holding [K] vectors to divide
    bool matmul_columns = false;  // slots[0] of `producer` is a MatMul weight whose columns are divided
  };
  Fold plan_fold(const ScaleGroup& grp) const;
  std::string rescale(const std::string& name, const std::set<int>& readers, const std::function<void(float*)>& f);

  Graph& g_;
  bool fold_into_matmul_;
  GraphIndex idx_;
  GraphRewrite rw_;
  std::map<int, std::vector<Node>> insert_before_;  // node index -> new Muls
  int64_t folded_ = 0, inserted_ = 0;
};

}  // namespace llmc
