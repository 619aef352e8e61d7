#include "passes/weight_slices.h"

namespace llmc {

void keep_slices(Graph& g, const std::string& initializer, const std::vector<int64_t>& keep, int axis) {
  Tensor* t = g.find_initializer(initializer);
  const float* src = t->data_as<float>();
  std::vector<int64_t> dims = t->dims();
  std::vector<float> out;
  out.reserve(keep.size() * (dims.size() == 1 ? 1 : dims[1 - axis]));
  if (dims.size() == 1) {
    for (int64_t j : keep) out.push_back(src[j]);
  } else if (axis == 0) {
    for (int64_t j : keep) out.insert(out.end(), src + j * dims[1], src + (j + 1) * dims[1]);
  } else {
    for (int64_t r = 0; r < dims[0]; ++r)
      for (int64_t j : keep) out.push_back(src[r * dims[1] + j]);
  }
  dims[dims.size() == 1 ? 0 : axis] = static_cast<int64_t>(keep.size());
  *t = Tensor::from_vector(initializer, DType::kF32, dims, out);
}

}  // namespace llmc
