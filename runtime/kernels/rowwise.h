// Helpers shared by the row-wise kernels (reduce.cpp, normalization.cpp): parallel grain for
// rows of a given length, index products, [outer, inner] segment walking, and running a float32
// kernel on float16/bfloat16 inputs (widened once, selected outputs rounded back).
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "runtime/kernels/hgemm.h"
#include "runtime/kernels/kernel_util.h"

namespace llmc::rt {

inline constexpr int64_t kGrain = 16384;  // elements of work per parallel chunk

inline int64_t grain_for(int64_t work_per_item) { return std::max<int64_t>(1, kGrain / std::max<int64_t>(1, work_per_item)); }

inline int64_t prod(const std::vector<int64_t>& s, size_t b, size_t e) {
  int64_t p = 1;
  for (size_t i = b; i < e; ++i) p *= s[i];
  return p;
}

// Calls fn(o, i0, i1) for the pieces of the flat range [b, e) of an [outer, inner] grid.
template <typename F>
void for_segments(int64_t b, int64_t e, int64_t inner, F&& fn) {
  while (b < e) {
    const int64_t o = b / inner, i0 = b % inner, i1 = std::min(inner, i0 + (e - b));
    fn(o, i0, i1);
    b += i1 - i0;
  }
}

// ---- float16 / bfloat16 through float32 ----

inline bool is_half(DType t) { return t == DType::kF16 || t == DType::kBF16; }

// float16 goes through hgemm's vectorised F16C conversions; bfloat16 is a shift either way.
inline Value widen(ThreadPool& pool, const Value& v) {
  Value out = Value::allocate(DType::kF32, v.shape());
  const uint16_t* s = v.data<uint16_t>();
  float* d = out.mutable_data<float>();
  const bool bf = v.dtype() == DType::kBF16;
  pool.parallel_for(v.numel(), kGrain, [&](int64_t b, int64_t e) {
    if (!bf) return halfs_to_floats(s + b, d + b, e - b);
    for (int64_t i = b; i < e; ++i) d[i] = bf16_to_float(s[i]);
  });
  return out;
}

// Runs `fn` with float16/bfloat16 inputs widened to float32; outputs listed in `narrow` that come
// back float32 are rounded to the half type. Without half inputs, runs `fn` on ctx directly.
template <typename F>
Status run_widened(KernelContext& ctx, const std::vector<size_t>& narrow, F&& fn) {
  DType half = DType::kUndefined;
  std::vector<Value> wide(ctx.num_inputs());
  std::vector<const Value*> ptrs(ctx.num_inputs());
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    ptrs[i] = ctx.input(i);
    if (ptrs[i] && is_half(ptrs[i]->dtype())) {
      half = ptrs[i]->dtype();
      wide[i] = widen(ctx.pool(), *ptrs[i]);
      ptrs[i] = &wide[i];
    }
  }
  if (half == DType::kUndefined) return fn(ctx);
  KernelContext inner(ctx.node(), ctx.opset(), ptrs, ctx.pool(), nullptr);
  LLMC_RETURN_IF_ERROR(fn(inner));
  for (size_t i = 0; i < inner.outputs().size(); ++i) {
    const Value& o = inner.outputs()[i];
    if (o.empty() || o.dtype() != DType::kF32 || std::find(narrow.begin(), narrow.end(), i) == narrow.end()) {
      ctx.set_output(i, o);
      continue;
    }
    Value& d = ctx.output(i, half, o.shape());
    const float* s = o.data<float>();
    uint16_t* dst = d.mutable_data<uint16_t>();
    const bool bf = half == DType::kBF16;
    if (!bf) {
      ctx.pool().parallel_for(o.numel(), kGrain, [&](int64_t b, int64_t e) { floats_to_halfs(s + b, dst + b, e - b); });
      continue;
    }
    ctx.pool().parallel_for(o.numel(), kGrain, [&](int64_t b, int64_t e) {
      for (int64_t k = b; k < e; ++k) dst[k] = bf ? float_to_bf16(s[k]) : float_to_half(s[k]);
    });
  }
  return Status::ok();
}

template <typename F>
KernelFn widened(std::vector<size_t> narrow, F fn) {
  return [narrow, fn](KernelContext& ctx) { return run_widened(ctx, narrow, fn); };
}

}  // namespace llmc::rt
