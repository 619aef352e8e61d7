// com.microsoft MatMulNBits (ONNX Runtime's block-wise 4/8-bit weight-only product) on
// nbits_gemm: Y[..., N] = A[..., K] · dequant(B)ᵀ + bias, where B [N, k_blocks, blob] holds
// row n's quantised weights block by block (see nbits_gemm.h for the math and the two modes).
// Constant weights are repacked once per session; accuracy_level 4 quantises A to int8 per
// block (exact int32 block products), any other level computes in float32.
#include <climits>

#include "runtime/file_pages.h"
#include "runtime/kernels/kernel_util.h"
#include "runtime/kernels/nbits_gemm.h"
#include "runtime/kernels/register.h"

namespace llmc::rt {

namespace {

struct NBitsAttrs {
  int64_t K = 0, bits = 4, block_size = 0, accuracy_level = 0;
};

Result<NBitsAttrs> read_attrs(const KernelContext& ctx) {
  NBitsAttrs a;
  if (!ctx.has_attr("K") || !ctx.has_attr("N") || !ctx.has_attr("block_size"))
    return invalid_input("MatMulNBits needs the attributes K, N and block_size");
  a.K = ctx.attr_int("K", 0);
  a.bits = ctx.attr_int("bits", 4);
  a.block_size = ctx.attr_int("block_size", 0);
  a.accuracy_level = ctx.attr_int("accuracy_level", 0);
  if (a.bits != 4 && a.bits != 8) return unsupported("MatMulNBits with bits=", a.bits, " (4 and 8 are supported)");
  if (a.block_size < 16 || (a.block_size & (a.block_size - 1)) != 0)
    return invalid_input("MatMulNBits block_size must be a power of two >= 16, got ", a.block_size);
  // Larger blocks could overflow the exact int32 block sums of 8-bit weights.
  if (a.block_size > 65536) return unsupported("MatMulNBits block_size ", a.block_size, " (at most 65536)");
  if (a.K <= 0 || a.K > INT32_MAX) return invalid_input("MatMulNBits K=", a.K, " out of range");
  if (a.accuracy_level < 0 || a.accuracy_level > 4)
    return invalid_input("MatMulNBits accuracy_level ", a.accuracy_level, " (0..4)");
  return a;
}

// One product's inputs, checked: B, scales, zero points (optional), g_idx (optional, must be
// absent or empty), bias (optional), at inputs base .. base + 4.
struct Member {
  NBitsWeights w;
  const float* bias = nullptr;
  bool constant = false;  // B, scales and zero points are session constants
};

Result<Member> check_member(const KernelContext& ctx, size_t base, const NBitsAttrs& at, int64_t N) {
  if (N <= 0 || N > INT32_MAX) return invalid_input("MatMulNBits N=", N, " out of range");
  const Value* B = ctx.input(base);
  const Value* S = ctx.input(base + 1);
  if (!B || !S) return invalid_input("MatMulNBits needs B and scales");
  const int64_t kb = (at.K + at.block_size - 1) / at.block_size, blob = at.block_size * at.bits / 8;
  if (B->dtype() != DType::kU8 || B->shape() != std::vector<int64_t>{N, kb, blob})
    return invalid_input("MatMulNBits B must be uint8 [", N, ", ", kb, ", ", blob, "] for K=", at.K, " N=", N,
                         " block_size=", at.block_size, ", got ", dtype_name(B->dtype()), " ", shape_str(B->shape()));
  if (S->dtype() != DType::kF32 || S->numel() != N * kb ||
      !(S->shape() == std::vector<int64_t>{N, kb} || S->shape() == std::vector<int64_t>{N * kb}))
    return invalid_input("MatMulNBits scales must be float32 [", N, ", ", kb, "], got ", dtype_name(S->dtype()), " ",
                         shape_str(S->shape()));
  Member m;
  m.w.K = at.K;
  m.w.N = N;
  m.w.bits = at.bits;
  m.w.block_size = at.block_size;
  m.w.B = B->data<uint8_t>();
  m.w.scales = S->data<float>();
  if (const Value* zp = ctx.input(base + 2)) {
    if (zp->dtype() == DType::kU8 && zp->numel() == N * ((kb * at.bits + 7) / 8)) m.w.zp_u8 = zp->data<uint8_t>();
    else if (zp->dtype() == DType::kF32 && zp->numel() == N * kb) m.w.zp_f = zp->data<float>();
    else
      return invalid_input("MatMulNBits zero_points must be uint8 [", N, ", ", (kb * at.bits + 7) / 8, "] or float32 [",
                           N, ", ", kb, "], got ", dtype_name(zp->dtype()), " ", shape_str(zp->shape()));
  }
  if (const Value* g = ctx.input(base + 3); g && g->numel() > 0)
    return unsupported("MatMulNBits with g_idx (act-order) is not supported");
  if (const Value* bias = ctx.input(base + 4)) {
    if (bias->dtype() != DType::kF32 || bias->numel() != N)
      return invalid_input("MatMulNBits bias must be float32 [", N, "], got ", dtype_name(bias->dtype()), " ",
                           shape_str(bias->shape()));
    m.bias = bias->data<float>();
  }
  m.constant = ctx.input_is_constant(base) && ctx.input_is_constant(base + 1) &&
               (!ctx.input(base + 2) || ctx.input_is_constant(base + 2));
  return m;
}

// Packs a session's constant weights once: the mapped file's pages of B are handed back (the
// packed copy is what every run reads) and the packed panels are declared as streamed.
std::shared_ptr<NBitsPacked> pack_constant(KernelContext& ctx, const NBitsWeights& w) {
  std::shared_ptr<NBitsPacked> pk(nbits_pack(w, &ctx.pool(), ctx.arena()));
  const int64_t kb = pk->k_blocks;
  release_file_pages(w.B, static_cast<size_t>(w.N * kb * w.block_size * w.bits / 8));
  release_file_pages(w.scales, static_cast<size_t>(w.N * kb) * sizeof(float));
  ctx.add_stream(pk->data.data(), pk->data.size());
  return pk;
}

// `members` products of A (input 0) sharing K, bits, block_size and accuracy level, with
// N[i] outputs each; product i's inputs are 1 + 5i .. 5 + 5i, its result output i.
Status run_products(KernelContext& ctx, const NBitsAttrs& at, const std::vector<int64_t>& N) {
  const size_t members = N.size();
  const Value& a = ctx.in(0);
  if (a.dtype() != DType::kF32) return unsupported("MatMulNBits A of type ", dtype_name(a.dtype()), " (float32 only)");
  if (a.rank() < 1 || a.shape().back() != at.K)
    return invalid_input("MatMulNBits A ", shape_str(a.shape()), " does not end in K=", at.K);
  struct Scratch {
    std::vector<Member> m;
    std::vector<NBitsProduct> products;
    NBitsQuantA qa;
  };
  thread_local Scratch sc;
  sc.m.resize(members);
  for (size_t i = 0; i < members; ++i) {
    LLMC_ASSIGN_OR_RETURN(sc.m[i], check_member(ctx, 1 + 5 * i, at, N[i]));
  }
  // Weights packed once for the session when constant; otherwise for this call only.
  struct Packs {
    std::vector<std::shared_ptr<NBitsPacked>> w;
  };
  const Packs* cached = ctx.cached<Packs>([&]() -> std::shared_ptr<Packs> {
    for (const Member& m : sc.m)
      if (!m.constant) return nullptr;
    auto p = std::make_shared<Packs>();
    for (const Member& m : sc.m) p->w.push_back(pack_constant(ctx, m.w));
    return p;
  });
  std::vector<std::shared_ptr<NBitsPacked>> fresh;
  if (!cached)
    for (const Member& m : sc.m) fresh.emplace_back(nbits_pack(m.w, &ctx.pool(), nullptr));
  const int64_t M = a.numel() / at.K;
  sc.products.resize(members);
  for (size_t i = 0; i < members; ++i) {
    std::vector<int64_t> shape = a.shape();
    shape.back() = N[i];
    LLMC_RETURN_IF_ERROR(ctx.check_output(DType::kF32, shape));
    Value& y = ctx.output(i, DType::kF32, std::move(shape));
    sc.products[i] = {cached ? cached->w[i].get() : fresh[i].get(), sc.m[i].bias, y.mutable_data<float>(), N[i]};
  }
  if (M == 0) return Status::ok();
  // A padded to whole blocks (int8 rows, or float rows when K is not a multiple of the block):
  // a block_size far above K multiplies it, so it is held to the session's limits like an output.
  const int64_t Kp = (at.K + at.block_size - 1) / at.block_size * at.block_size;
  LLMC_RETURN_IF_ERROR(
      ctx.check_output(at.accuracy_level == 4 ? DType::kI8 : DType::kF32, {nbits_quantized_rows(M), Kp}));
  if (at.accuracy_level == 4) {
    nbits_quantize_a(a.data<float>(), M, at.K, at.K, at.block_size, sc.qa, &ctx.pool());
    nbits_gemm_int8(sc.qa, sc.products.data(), members, &ctx.pool());
  } else {
    nbits_gemm_float(a.data<float>(), M, at.K, sc.products.data(), members, &ctx.pool());
  }
  return Status::ok();
}

// com.microsoft.MatMulNBits(A, B, scales, zero_points?, g_idx?, bias?).
Status matmul_nbits(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(3));
  LLMC_ASSIGN_OR_RETURN(const NBitsAttrs at, read_attrs(ctx));
  return run_products(ctx, at, {ctx.attr_int("N", 0)});
}

}  // namespace

// Several MatMulNBits of one activation (the session's plan-time group fold): A, then (B,
// scales, zero_points, g_idx, bias) per product; attributes K, bits, block_size and
// accuracy_level shared, N listing each product's. A is quantised once and every product's
// panels run in one parallel loop; each output has the bits its own node gives.
Status matmul_nbits_group(KernelContext& ctx) {
  const std::vector<int64_t>* N = ctx.attr_ints("N");
  if (!N || N->empty() || ctx.num_inputs() != 1 + 5 * N->size())
    return invalid_input("a MatMulNBits group takes A and five inputs per product");
  LLMC_ASSIGN_OR_RETURN(const NBitsAttrs at, read_attrs(ctx));
  return run_products(ctx, at, *N);
}

void register_matmul_nbits_kernels(KernelRegistry& r) { r.add("com.microsoft", "MatMulNBits", matmul_nbits); }

}  // namespace llmc::rt
