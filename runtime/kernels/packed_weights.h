// A constant float weight packed for its kernel, on one set of conditions for every kernel that
// multiplies by it: MatMul and its group step (matmul_group.cpp) must pack alike, or their
// results would differ in the last bits. Float32 is packed only when B lies in a read-only file
// mapping (a copy the reader made on the heap would then be held twice), float16 always; the
// file's pages are handed back, and the panels are declared as streamed every run
// (KernelContext::add_stream). Defined in matmul.cpp.
#pragma once
#include <memory>

#include "runtime/kernel.h"
#include "runtime/kernels/hgemm.h"
#include "runtime/kernels/sgemm.h"

namespace llmc::rt {

// nullptr when B is not in a read-only file mapping.
std::unique_ptr<SPackedB> pack_f32_weight(KernelContext& ctx, const float* B, int64_t K, int64_t N);
std::unique_ptr<HPackedB> pack_f16_weight(KernelContext& ctx, const uint16_t* B, int64_t K, int64_t N);

}  // namespace llmc::rt
