#include "runtime/kernels/register.h"

namespace llmc::rt {

const KernelRegistry& builtin_kernels() {
  static const KernelRegistry registry = [] {
    KernelRegistry r;
    register_binary_kernels(r);
    register_nary_kernels(r);
    register_unary_kernels(r);
    register_cast_kernels(r);
    register_shape_kernels(r);
    register_data_movement_kernels(r);
    register_gather_pad_kernels(r);
    register_reduce_kernels(r);
    register_normalization_kernels(r);
    register_matmul_kernels(r);
    register_quantize_kernels(r);
    register_quantized_matmul_kernels(r);
    register_nm_sparse_kernels(r);
    register_matmul_nbits_kernels(r);
    return r;
  }();
  return registry;
}

}  // namespace llmc::rt
