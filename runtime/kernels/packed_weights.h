// A constant float weight packed for its kernel, on one set of conditions for every kernel that
// multiplies by it: MatMul and its group step (matmul_group.cpp) must pack alike, or their
// results would differ in the last bits. Always packed; when B lies in a read-only file mapping
// its pages are handed back, so resident memory holds that weight once. A weight the reader
// copied to the heap (PyTorch's exporter leaves most inline initializers misaligned) is held
// twice, as ONNX Runtime holds it: packing it anyway made Hugging Face exports' prefill 10-14%
// faster (docs/performance.md). The panels are declared as streamed every run
// (KernelContext::add_stream). Defined in matmul.cpp.
#pragma once
#include <memory>

#include "runtime/kernel.h"
#include "runtime/kernels/hgemm.h"
#include "runtime/kernels/sgemm.h"

namespace llmc::rt {

std::unique_ptr<SPackedB> pack_f32_weight(KernelContext& ctx, const float* B, int64_t K, int64_t N);
std::unique_ptr<HPackedB> pack_f16_weight(KernelContext& ctx, const uint16_t* B, int64_t K, int64_t N);

}  // namespace llmc::rt
