// Shape kernels: ops that only change or report shapes (Reshape, Squeeze, Unsqueeze, Flatten
// alias their input), make constants (Shape, Size, Constant, ConstantOfShape, Range), and
// Expand (a broadcast copy). Element types are handled by byte size where the op allows any.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "ir/checked_math.h"
#include "runtime/kernels/kernel_util.h"
#include "runtime/kernels/register.h"

namespace llmc::rt {
namespace {

// Bytes per element; an error for strings and packed sub-byte types.
Result<size_t> elem_bytes(DType t) {
  const int bits = dtype_bits(t);
  if (bits <= 0 || bits % 8 != 0)
    return unsupported("dtype ", dtype_name(t), " is not supported by this kernel");
  return static_cast<size_t>(bits / 8);
}

// The axes of an op whose `axes` attribute became an input at opset 13.
// Sets *given = false when neither form is present.
Result<std::vector<int64_t>> axes_attr_or_input(KernelContext& ctx, size_t input_index, bool* given) {
  *given = false;
  if (ctx.opset() < 13) {
    if (const auto* a = ctx.attr_ints("axes")) {
      *given = true;
      return *a;
    }
    return std::vector<int64_t>{};
  }
  if (const Value* v = ctx.input(input_index)) {
    *given = true;
    return read_int_values(*v, "axes");
  }
  return std::vector<int64_t>{};
}

Status reshape(KernelContext& ctx) {
  if (!ctx.input(0)) return ctx.fail("input 0 (data) is required");
  const Value& x = ctx.in(0);
  std::vector<int64_t> spec;
  if (ctx.opset() < 5) {
    const auto* a = ctx.attr_ints("shape");
    if (!a) return ctx.fail("missing 'shape' attribute");
    spec = *a;
  } else {
    if (!ctx.input(1)) return ctx.fail("input 1 (shape) is required");
    LLMC_ASSIGN_OR_RETURN(spec, read_int_values(ctx.in(1), "shape"));
  }
  const bool allowzero = ctx.opset() >= 14 && ctx.attr_int("allowzero", 0) != 0;
  LLMC_ASSIGN_OR_RETURN(auto shape, reshape_target(x.shape(), x.numel(), spec, allowzero));
  ctx.set_output(0, x.reshaped(std::move(shape)));
  return Status::ok();
}

Status squeeze(KernelContext& ctx) {
  if (!ctx.input(0)) return ctx.fail("input 0 (data) is required");
  const Value& x = ctx.in(0);
  bool given = false;
  LLMC_ASSIGN_OR_RETURN(auto axes, axes_attr_or_input(ctx, 1, &given));
  std::vector<bool> drop(x.rank(), false);
  if (!given) {
    for (int i = 0; i < x.rank(); ++i) drop[i] = x.shape()[i] == 1;
  } else {
    for (int64_t a : axes) {
      LLMC_ASSIGN_OR_RETURN(int ax, normalize_axis(a, x.rank()));
      if (x.shape()[ax] != 1)
        return ctx.fail("cannot squeeze axis ", a, " of shape ", shape_str(x.shape()), ": dim is not 1");
      drop[ax] = true;
    }
  }
  std::vector<int64_t> shape;
  for (int i = 0; i < x.rank(); ++i)
    if (!drop[i]) shape.push_back(x.shape()[i]);
  ctx.set_output(0, x.reshaped(std::move(shape)));
  return Status::ok();
}

Status unsqueeze(KernelContext& ctx) {
  if (!ctx.input(0)) return ctx.fail("input 0 (data) is required");
  const Value& x = ctx.in(0);
  bool given = false;
  LLMC_ASSIGN_OR_RETURN(auto axes, axes_attr_or_input(ctx, 1, &given));
  if (!given) return ctx.fail("axes are required (", ctx.opset() < 13 ? "attribute" : "input 1", ")");
  const int out_rank = x.rank() + static_cast<int>(axes.size());
  std::vector<bool> inserted(out_rank, false);
  for (int64_t a : axes) {
    LLMC_ASSIGN_OR_RETURN(int ax, normalize_axis(a, out_rank));
    if (inserted[ax]) return ctx.fail("axes ", shape_str(axes), " repeat axis ", a);
    inserted[ax] = true;
  }
  std::vector<int64_t> shape(out_rank);
  for (int i = 0, j = 0; i < out_rank; ++i) shape[i] = inserted[i] ? 1 : x.shape()[j++];
  ctx.set_output(0, x.reshaped(std::move(shape)));
  return Status::ok();
}

Status flatten(KernelContext& ctx) {
  if (!ctx.input(0)) return ctx.fail("input 0 (data) is required");
  const Value& x = ctx.in(0);
  int64_t axis = ctx.attr_int("axis", 1);
  if (axis < -x.rank() || axis > x.rank())
    return ctx.fail("axis ", axis, " is out of range for shape ", shape_str(x.shape()));
  if (axis < 0) axis += x.rank();
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < x.rank(); ++i) (i < axis ? outer : inner) *= x.shape()[i];
  ctx.set_output(0, x.reshaped({outer, inner}));
  return Status::ok();
}

Status shape_op(KernelContext& ctx) {
  if (!ctx.input(0)) return ctx.fail("input 0 (data) is required");
  const Value& x = ctx.in(0);
  const int64_t r = x.rank();
  int64_t start = 0, end = r;
  if (ctx.opset() >= 15) {
    start = ctx.attr_int("start", 0);
    end = ctx.attr_int("end", r);
  }
  if (start < 0) start += r;
  if (end < 0) end += r;
  start = std::clamp<int64_t>(start, 0, r);
  end = std::clamp<int64_t>(end, 0, r);
  const int64_t n = std::max<int64_t>(end - start, 0);
  Value& out = ctx.output(0, DType::kI64, {n});
  for (int64_t i = 0; i < n; ++i) out.mutable_data<int64_t>()[i] = x.shape()[start + i];
  return Status::ok();
}

Status size_op(KernelContext& ctx) {
  if (!ctx.input(0)) return ctx.fail("input 0 (data) is required");
  ctx.output(0, DType::kI64, {}).mutable_data<int64_t>()[0] = ctx.in(0).numel();
  return Status::ok();
}

// Fills `count` elements of `esz` bytes at dst with the element at src.
void fill_repeat(uint8_t* dst, const void* src, size_t esz, int64_t count) {
  if (count <= 0) return;
  bool zero = true;
  for (size_t b = 0; b < esz; ++b) zero = zero && static_cast<const uint8_t*>(src)[b] == 0;
  if (zero) {
    std::memset(dst, 0, esz * count);
    return;
  }
  std::memcpy(dst, src, esz);
  int64_t done = 1;
  while (done < count) {  // doubling copies
    const int64_t n = std::min(done, count - done);
    std::memcpy(dst + done * esz, dst, n * esz);
    done += n;
  }
}

Status constant_of_shape(KernelContext& ctx) {
  if (!ctx.input(0)) return ctx.fail("input 0 (shape) is required");
  LLMC_ASSIGN_OR_RETURN(auto shape, read_int_values(ctx.in(0), "shape"));
  for (int64_t d : shape)
    if (d < 0) return ctx.fail("shape ", shape_str(shape), " has a negative dim");
  const Tensor* t = ctx.attr_tensor("value");
  DType dtype = DType::kF32;
  uint8_t zero[16] = {};
  const void* elem = zero;
  if (t) {
    if (t->numel() != 1) return ctx.fail("'value' must hold one element, got shape ", shape_str(t->dims()));
    LLMC_ASSIGN_OR_RETURN(size_t esz, elem_bytes(t->dtype()));
    if (t->nbytes() < esz) return ctx.fail("'value' tensor has no data");
    dtype = t->dtype();
    elem = t->data();
  }
  LLMC_ASSIGN_OR_RETURN(size_t esz, elem_bytes(dtype));
  LLMC_RETURN_IF_ERROR(ctx.check_output(dtype, shape));
  Value& out = ctx.output(0, dtype, shape);
  fill_repeat(static_cast<uint8_t*>(out.mutable_raw()), elem, esz, out.numel());
  return Status::ok();
}

Status constant(KernelContext& ctx) {
  if (const Tensor* t = ctx.attr_tensor("value")) {
    if (t->dtype() == DType::kString) return unsupported("string constants are not supported");
    if (t->nbytes() != t->expected_nbytes())
      return ctx.fail("'value' tensor has ", t->nbytes(), " bytes, its shape ", shape_str(t->dims()),
                      " needs ", t->expected_nbytes());
    ctx.set_output(0, Value::borrow(*t));
    return Status::ok();
  }
  const Attribute* a = nullptr;
  for (const char* name : {"value_float", "value_floats", "value_int", "value_ints"})
    if ((a = ctx.node().find_attr(name))) break;
  if (!a) {
    if (ctx.has_attr("sparse_value") || ctx.has_attr("value_string") || ctx.has_attr("value_strings"))
      return unsupported("Constant with sparse_value / value_string(s) is not supported");
    return ctx.fail("no value attribute");
  }
  if (a->name == "value_float") {
    ctx.output(0, DType::kF32, {}).mutable_data<float>()[0] = a->f;
  } else if (a->name == "value_int") {
    ctx.output(0, DType::kI64, {}).mutable_data<int64_t>()[0] = a->i;
  } else if (a->name == "value_floats") {
    Value& out = ctx.output(0, DType::kF32, {static_cast<int64_t>(a->floats.size())});
    std::copy(a->floats.begin(), a->floats.end(), out.mutable_data<float>());
  } else {
    Value& out = ctx.output(0, DType::kI64, {static_cast<int64_t>(a->ints.size())});
    std::copy(a->ints.begin(), a->ints.end(), out.mutable_data<int64_t>());
  }
  return Status::ok();
}

template <typename T>
Status range_typed(KernelContext& ctx) {
  for (int i = 0; i < 3; ++i)
    if (ctx.in(i).numel() != 1 || ctx.in(i).rank() > 1)
      return ctx.fail("input ", i, " must be a scalar, got shape ", shape_str(ctx.in(i).shape()));
  const T start = ctx.in(0).data<T>()[0], limit = ctx.in(1).data<T>()[0], delta = ctx.in(2).data<T>()[0];
  if (delta == T(0)) return ctx.fail("delta is 0");
  int64_t n;
  if constexpr (std::is_integral_v<T>) {
    // ceil(diff / d) in 128 bits: limit - start of two int64s needs 65, and INT64_MIN / -1
    // traps (SIGFPE) in 64.
    const __int128 diff = static_cast<__int128>(limit) - static_cast<__int128>(start);
    const __int128 d = static_cast<__int128>(delta);
    __int128 q = diff / d;
    if (diff % d != 0 && ((diff < 0) == (d < 0))) ++q;
    if (q > std::numeric_limits<int64_t>::max())
      return ctx.fail("range from ", static_cast<int64_t>(start), " to ", static_cast<int64_t>(limit), " by ",
                      static_cast<int64_t>(delta), " is too large");
    n = std::max<int64_t>(static_cast<int64_t>(q), 0);
  } else {
    const double c = std::ceil(static_cast<double>(limit - start) / static_cast<double>(delta));
    if (!std::isfinite(c)) return ctx.fail("range has a non-finite length");
    if (c >= 0x1p63) return ctx.fail("range from ", start, " to ", limit, " by ", delta, " is too large");
    n = std::max<int64_t>(static_cast<int64_t>(c), 0);
  }
  LLMC_RETURN_IF_ERROR(ctx.check_output(ctx.in(0).dtype(), {n}));
  Value& out = ctx.output(0, ctx.in(0).dtype(), {n});
  T* o = out.mutable_data<T>();
  for (int64_t i = 0; i < n; ++i) {
    if constexpr (std::is_integral_v<T>)  // modulo 2^64: every value is in [start, limit), the steps may not be
      o[i] = static_cast<T>(static_cast<uint64_t>(start) + static_cast<uint64_t>(i) * static_cast<uint64_t>(delta));
    else
      o[i] = static_cast<T>(static_cast<double>(start) + static_cast<double>(i) * static_cast<double>(delta));
  }
  return Status::ok();
}

Status range(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(3));
  const DType t = ctx.in(0).dtype();
  if (ctx.in(1).dtype() != t || ctx.in(2).dtype() != t)
    return ctx.fail("start, limit and delta must have one dtype, got ", dtype_name(t), ", ",
                    dtype_name(ctx.in(1).dtype()), ", ", dtype_name(ctx.in(2).dtype()));
  switch (t) {
    case DType::kF32: return range_typed<float>(ctx);
    case DType::kF64: return range_typed<double>(ctx);
    case DType::kI16: return range_typed<int16_t>(ctx);
    case DType::kI32: return range_typed<int32_t>(ctx);
    case DType::kI64: return range_typed<int64_t>(ctx);
    default: return unsupported("Range does not support dtype ", dtype_name(t));
  }
}

// Copies `count` elements from src (element stride `stride`, may be 0) to contiguous dst.
void strided_copy(uint8_t* dst, const uint8_t* src, int64_t stride, int64_t count, size_t esz) {
  auto typed = [&](auto tag) {
    using T = decltype(tag);
    T* d = reinterpret_cast<T*>(dst);
    const T* s = reinterpret_cast<const T*>(src);
    for (int64_t i = 0; i < count; ++i) std::memcpy(d + i, s + i * stride, sizeof(T));
  };
  switch (esz) {
    case 1: typed(uint8_t{}); break;
    case 2: typed(uint16_t{}); break;
    case 4: typed(uint32_t{}); break;
    case 8: typed(uint64_t{}); break;
    default:
      for (int64_t i = 0; i < count; ++i) std::memcpy(dst + i * esz, src + i * stride * esz, esz);
  }
}

Status expand(KernelContext& ctx) {
  LLMC_RETURN_IF_ERROR(ctx.require_inputs(2));
  const Value& x = ctx.in(0);
  LLMC_ASSIGN_OR_RETURN(auto shape, read_int_values(ctx.in(1), "shape"));
  for (int64_t d : shape)
    if (d < 0) return ctx.fail("shape ", shape_str(shape), " has a negative dim");
  LLMC_ASSIGN_OR_RETURN(auto out_shape, broadcast_shapes(x.shape(), shape));
  LLMC_ASSIGN_OR_RETURN(size_t esz, elem_bytes(x.dtype()));
  if (out_shape == x.shape()) {
    ctx.set_output(0, x);
    return Status::ok();
  }
  LLMC_RETURN_IF_ERROR(ctx.check_output(x.dtype(), out_shape));
  Value& out = ctx.output(0, x.dtype(), out_shape);
  if (out.numel() == 0) return Status::ok();
  auto strides = broadcast_strides(x.shape(), out_shape);
  // Trailing dims the input already has in full form one contiguous block.
  int r = static_cast<int>(out_shape.size());
  int64_t block = 1;
  const size_t off = out_shape.size() - x.shape().size();
  while (r > 0 && static_cast<size_t>(r - 1) >= off && x.shape()[r - 1 - off] == out_shape[r - 1]) {
    block *= out_shape[r - 1];
    --r;
  }
  // Remaining dims: rows of the last remaining dim (stride may be 0), rows of blocks.
  const int64_t last = r > 0 ? out_shape[r - 1] : 1;
  const int64_t last_stride = r > 0 ? strides[r - 1] : 0;
  const int64_t rows = out.numel() / (block * last);
  const uint8_t* src = static_cast<const uint8_t*>(x.raw());
  uint8_t* dst = static_cast<uint8_t*>(out.mutable_raw());
  const int64_t row_elems = block * last;
  ctx.pool().parallel_for(rows, std::max<int64_t>(1, 16384 / row_elems), [&](int64_t b, int64_t e) {
    for (int64_t row = b; row < e; ++row) {
      int64_t in_off = 0, rem = row;
      for (int d = r - 2; d >= 0; --d) {
        in_off += (rem % out_shape[d]) * strides[d];
        rem /= out_shape[d];
      }
      uint8_t* o = dst + row * row_elems * esz;
      if (block == 1) {
        strided_copy(o, src + in_off * esz, last_stride, last, esz);
      } else {
        for (int64_t j = 0; j < last; ++j)
          std::memcpy(o + j * block * esz, src + (in_off + j * last_stride) * esz, block * esz);
      }
    }
  });
  return Status::ok();
}

}  // namespace

void register_shape_kernels(KernelRegistry& r) {
  r.add("Reshape", reshape);
  r.add("Squeeze", squeeze);
  r.add("Unsqueeze", unsqueeze);
  r.add("Flatten", flatten);
  r.add("Shape", shape_op);
  r.add("Size", size_op);
  r.add("ConstantOfShape", constant_of_shape);
  r.add("Constant", constant);
  r.add("Range", range);
  r.add("Expand", expand);
}

}  // namespace llmc::rt
