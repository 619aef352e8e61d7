// MatMul over a grouped-query KV cache without repeating it. Hugging Face's Llama/Qwen2
// attention repeats each of G key/value heads r times before the products:
//   B = Reshape(Expand(Unsqueeze(X [b, G, s, d], 2), [b, G, r, s, d]), [b, G*r, s, d])
// which copied the whole cache r times per layer and decoded token (42% of decode under load
// on a 135M export). The Session folds the chain away (session_fold_grouped_kv.cpp) and this
// step multiplies A [b, G*r, m, k] viewed as [b, G, r*m, k] by X directly: head h = g*r + j
// reads group g, and A's rows of one group are contiguous, so the view is exact and every
// output element is the same sum the repeated B gives.
//
// The Expand and Reshape shapes arrive as inputs 2 and 3 and are checked every run; when they
// are not the repeat (another expand target, a reshape that merges other axes), the chain is
// computed as written, with the Expand and Reshape kernels, and multiplied as the graph says.
#include <algorithm>

#include "ir/checked_math.h"

#include "runtime/kernels/kernel_util.h"
#include "runtime/kernels/register.h"

namespace llmc::rt {

namespace {

// The shape Reshape(Expand(Unsqueeze(x, 2), expand_to), reshape_to) has, or the error the
// kernels would give; counts overflow-checked (the shapes come from data). `expanded`, when
// given, receives the Expand's output shape.
Result<std::vector<int64_t>> repeated_shape(std::vector<int64_t> x, const std::vector<int64_t>& expand_to,
                                            const std::vector<int64_t>& reshape_to,
                                            std::vector<int64_t>* expanded = nullptr) {
  if (x.size() < 2) return invalid_input("the repeated tensor must have rank >= 2");
  x.insert(x.begin() + 2, 1);
  LLMC_ASSIGN_OR_RETURN(auto e, broadcast_shapes(x, expand_to));
  const auto n = checked_numel(e);
  if (!n) return invalid_input("the expanded shape ", shape_str(e), " has no representable size");
  if (expanded) *expanded = e;
  return reshape_target(e, *n, reshape_to, false);
}

// The chain as written: Unsqueeze at axis 2, Expand, Reshape, then the product.
Status repeat_then_multiply(KernelContext& ctx, const Value& a, const Value& x) {
  LLMC_ASSIGN_OR_RETURN(Value b, repeat_kv(x, ctx.in(2), ctx.in(3), ctx.pool(), ctx.node().name));
  return matmul_of(ctx, a, b);
}

}  // namespace

Result<Value> repeat_kv(const Value& x, const Value& expand_shape, const Value& reshape_shape, ThreadPool& pool,
                        const std::string& name) {
  const KernelRegistry& r = builtin_kernels();
  Node expand_node, reshape_node;
  expand_node.name = name + "_expand";
  expand_node.op_type = "Expand";
  reshape_node.name = name + "_reshape";
  reshape_node.op_type = "Reshape";
  if (x.rank() < 2) return invalid_input(name, ": the repeated tensor must have rank >= 2");
  std::vector<int64_t> unsq = x.shape();
  unsq.insert(unsq.begin() + 2, 1);
  const Value xu = (x.dense() ? x : x.densified()).reshaped(unsq);
  std::vector<const Value*> expand_in{&xu, &expand_shape};
  std::vector<Value> expanded;
  KernelContext ectx(expand_node, 13, expand_in, expanded, pool, nullptr);
  LLMC_RETURN_IF_ERROR((*r.find("", "Expand"))(ectx));
  std::vector<const Value*> reshape_in{&expanded[0], &reshape_shape};
  std::vector<Value> reshaped;
  KernelContext rctx(reshape_node, 14, reshape_in, reshaped, pool, nullptr);
  LLMC_RETURN_IF_ERROR((*r.find("", "Reshape"))(rctx));
  return reshaped[0];
}

// Shape(B) for a Shape that read the folded repeat's output (Hugging Face slices the causal
// mask to the keys' length with it): the shape the Unsqueeze/Expand/Reshape chain would have
// made, from X, the Expand shape and the Reshape shape, then Shape's start/end.
Status repeated_kv_shape(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(3));
  LLMC_ASSIGN_OR_RETURN(auto expand_to, read_int_values(ctx.in(1), "expand shape"));
  LLMC_ASSIGN_OR_RETURN(auto reshape_to, read_int_values(ctx.in(2), "reshape shape"));
  LLMC_ASSIGN_OR_RETURN(auto full, repeated_shape(ctx.in(0).shape(), expand_to, reshape_to));
  const int64_t rank = static_cast<int64_t>(full.size());
  auto clamp = [&](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + rank : v, 0, rank); };
  const int64_t start = clamp(ctx.attr_int("start", 0)), end = clamp(ctx.attr_int("end", rank));
  Value& out = ctx.output(0, DType::kI64, {std::max<int64_t>(0, end - start)});
  for (int64_t i = start; i < end; ++i) out.mutable_data<int64_t>()[i - start] = full[i];
  return Status::ok();
}

Status grouped_kv_matmul(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(4));
  const Value& a = ctx.in(0);
  const Value& x = ctx.in(1);
  LLMC_ASSIGN_OR_RETURN(auto expand_to, read_int_values(ctx.in(2), "expand shape"));
  LLMC_ASSIGN_OR_RETURN(auto reshape_to, read_int_values(ctx.in(3), "reshape shape"));
  if (x.rank() != 4 || a.rank() != 4 || expand_to.size() != 5 || reshape_to.size() != 4)
    return repeat_then_multiply(ctx, a, x);
  // A repeat: expanded to [b, G, r, s, d] and reshaped to [b, G*r, s, d].
  std::vector<int64_t> e;
  const auto shape = repeated_shape(x.shape(), expand_to, reshape_to, &e);
  if (!shape.is_ok()) return repeat_then_multiply(ctx, a, x);  // the kernels name the error
  const int64_t groups = x.dim(1), rep = e[2];
  const auto heads_repeated = checked_mul(groups, rep);
  const bool is_repeat = heads_repeated && rep >= 1 && e[0] == x.dim(0) && e[1] == groups && e[3] == x.dim(2) &&
                         e[4] == x.dim(3) &&
                         shape.value() == std::vector<int64_t>{x.dim(0), *heads_repeated, x.dim(2), x.dim(3)};
  if (!is_repeat || a.dim(1) != *heads_repeated || a.dim(0) != x.dim(0)) return repeat_then_multiply(ctx, a, x);
  const Value ad = a.dense() ? a : a.densified();
  const int64_t m = ad.dim(2), heads = ad.dim(1);
  LLMC_RETURN_IF_ERROR(matmul_of(ctx, ad.reshaped({ad.dim(0), groups, rep * m, ad.dim(3)}), x));
  Value& y = ctx.outputs()[0];
  ctx.set_output(0, y.reshaped({ad.dim(0), heads, m, y.dim(-1)}));
  return Status::ok();
}

}  // namespace llmc::rt
