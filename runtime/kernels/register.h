// One registration function per kernel file; runtime/kernel_registry.cpp calls them all.
#pragma once
#include "runtime/kernel.h"

namespace llmc::rt {
void register_binary_kernels(KernelRegistry& r);        // elementwise_binary.cpp
void register_nary_kernels(KernelRegistry& r);          // elementwise_nary.cpp
void register_unary_kernels(KernelRegistry& r);         // elementwise_unary.cpp
void register_cast_kernels(KernelRegistry& r);          // cast.cpp
void register_shape_kernels(KernelRegistry& r);         // shape_ops.cpp
void register_data_movement_kernels(KernelRegistry& r); // data_movement.cpp
void register_gather_pad_kernels(KernelRegistry& r);    // gather_pad.cpp
void register_reduce_kernels(KernelRegistry& r);        // reduce.cpp
void register_normalization_kernels(KernelRegistry& r); // normalization.cpp
void register_matmul_kernels(KernelRegistry& r);        // matmul.cpp
void register_quantize_kernels(KernelRegistry& r);      // quantize_linear.cpp
void register_quantized_matmul_kernels(KernelRegistry& r); // quantized_matmul.cpp
void register_nm_sparse_kernels(KernelRegistry& r);        // nm_sparse_matmul.cpp
void register_matmul_nbits_kernels(KernelRegistry& r);     // matmul_nbits.cpp

// MatMul of two values as the MatMul kernel computes it (matmul.cpp), and MatMul over a
// grouped-query KV cache the Session folded the repeat-kv chain out of (grouped_kv_matmul.cpp,
// called by the MatMul kernel when the node carries kMatMulKvGroups).
Status matmul_of(KernelContext& ctx, const Value& a, const Value& b);
Status grouped_kv_matmul(KernelContext& ctx);
// Shape of the folded repeat's output, for a Shape that read it (grouped_kv_matmul.cpp).
Status repeated_kv_shape(KernelContext& ctx);
// The folded repeat's output itself, Reshape(Expand(Unsqueeze(x, 2), e), r), as the kernels
// compute it: for taps that ask for it (calibration observes every MatMul input).
Result<Value> repeat_kv(const Value& x, const Value& expand_shape, const Value& reshape_shape, ThreadPool& pool,
                        const std::string& name);

// Not in the registry: the step the Session folds RMSNorm's ONNX op chain into
// (session_fold_rmsnorm.cpp), normalization.cpp.
Status rms_norm_onnx_chain(KernelContext& ctx);
// Not in the registry: DynamicQuantizeMatMuls sharing one activation, run as one step
// (session_fold_dqmm_group.cpp), quantized_matmul.cpp.
Status dynamic_quantize_matmul_group(KernelContext& ctx);
// Not in the registry: float MatMuls sharing one activation, with constant 2-D weights, run as
// one step (session_fold_matmul_group.cpp), matmul_group.cpp.
Status matmul_group(KernelContext& ctx);
// Not in the registry: low-rank pairs (x · A_i) · B_i of one activation, run as one step
// (session_fold_lowrank.cpp), lowrank_matmul.cpp.
Status lowrank_matmul_group(KernelContext& ctx);
// Not in the registry: NMSparseMatMuls sharing one activation, run as one step
// (session_fold_nm_group.cpp), nm_sparse_matmul.cpp.
Status nm_sparse_matmul_group(KernelContext& ctx);
// Not in the registry: MatMulNBits sharing one activation, run as one step
// (session_fold_nbits_group.cpp), matmul_nbits.cpp.
Status matmul_nbits_group(KernelContext& ctx);
// Not in the registry: a rotary embedding's Split/Mul/Sub/Add/Concat chain run as one step
// (session_fold_rotary.cpp), rotary.cpp.
Status rotary_pairs_chain(KernelContext& ctx);
// Not in the registry: x * Sigmoid(x) (SiLU, a Llama MLP's gate) as one step
// (session_fold_silu.cpp), elementwise_unary.cpp.
Status silu_chain(KernelContext& ctx);
}  // namespace llmc::rt
