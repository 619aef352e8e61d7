#include "runtime/kernels/kernel_util.h"

#include <cstring>

#include "ir/checked_math.h"

namespace llmc::rt {

Result<std::vector<int64_t>> broadcast_shapes(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  const size_t r = std::max(a.size(), b.size());
  std::vector<int64_t> out(r);
  for (size_t i = 0; i < r; ++i) {
    const int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    const int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (da != db && da != 1 && db != 1)
      return invalid_input("shapes ", shape_str(a), " and ", shape_str(b), " cannot be broadcast");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

std::vector<int64_t> contiguous_strides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> s(shape.size());
  int64_t acc = 1;
  for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

std::vector<int64_t> broadcast_strides(const std::vector<int64_t>& in, const std::vector<int64_t>& out) {
  std::vector<int64_t> s(out.size(), 0);
  const auto cs = contiguous_strides(in);
  const size_t off = out.size() - in.size();
  for (size_t i = 0; i < in.size(); ++i) s[off + i] = in[i] == 1 ? 0 : cs[i];
  return s;
}

Result<int> normalize_axis(int64_t axis, int rank) {
  // A scalar has no axis: ops that accept rank 0 handle it before asking (a hostile graph's
  // Squeeze or Split of a scalar would otherwise index an empty shape).
  if (axis < -rank || axis >= rank)
    return invalid_input("axis ", axis, " is out of range for rank ", rank);
  return static_cast<int>(axis < 0 ? axis + rank : axis);
}

Result<std::vector<int64_t>> read_int_values(const Value& v, const char* what) {
  if (v.rank() > 1) return invalid_input(what, " must be 0-D or 1-D, got shape ", shape_str(v.shape()));
  std::vector<int64_t> out(static_cast<size_t>(v.numel()));
  if (v.dtype() == DType::kI64) {
    if (!out.empty()) std::memcpy(out.data(), v.raw(), out.size() * sizeof(int64_t));  // empty: raw() may be null
  } else if (v.dtype() == DType::kI32) {
    for (size_t i = 0; i < out.size(); ++i) out[i] = v.data<int32_t>()[i];
  } else {
    return invalid_input(what, " must be int32 or int64, got ", dtype_name(v.dtype()));
  }
  return out;
}

Result<double> read_scalar(const Value& v, const char* what) {
  if (v.numel() != 1) return invalid_input(what, " must hold one value, got shape ", shape_str(v.shape()));
  double out = 0;
  Status st = dispatch_numeric(v.dtype(), [&](auto t) -> Status {
    out = static_cast<double>(v.data<decltype(t)>()[0]);
    return Status::ok();
  });
  if (!st.is_ok()) return st;
  return out;
}

float half_to_float(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while (!(mant & 0x400)) {
        mant <<= 1;
        --exp;
      }
      bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) return static_cast<uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0));
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to inf
  if (abs < 0x38800000u) {  // subnormal or zero in half
    if (abs < 0x33000000u) return static_cast<uint16_t>(sign);
    const uint32_t e = abs >> 23;
    const uint32_t m = (abs & 0x7fffffu) | 0x800000u;
    // value = m * 2^(e-150); in units of the half subnormal step 2^-24 that is m >> (126 - e).
    const uint32_t shift = 126 - e;
    const uint32_t rem = m & ((1u << shift) - 1);
    const uint32_t halfway = 1u << (shift - 1);
    uint32_t r = m >> shift;
    if (rem > halfway || (rem == halfway && (r & 1))) ++r;  // may carry into the min normal
    return static_cast<uint16_t>(sign | r);
  }
  uint32_t r = ((abs - 0x38000000u) >> 13);
  const uint32_t rem = abs & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1))) ++r;
  return static_cast<uint16_t>(sign | r);
}

float bf16_to_float(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t float_to_bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40);  // quiet NaN
  const uint32_t lsb = (x >> 16) & 1;
  x += 0x7fffu + lsb;
  return static_cast<uint16_t>(x >> 16);
}

Result<std::vector<int64_t>> reshape_target(const std::vector<int64_t>& in, int64_t in_numel,
                                            const std::vector<int64_t>& spec, bool allowzero) {
  int infer = -1;
  int64_t known = 1;
  std::vector<int64_t> shape(spec.size());
  for (size_t i = 0; i < spec.size(); ++i) {
    int64_t d = spec[i];
    if (d == -1) {
      if (infer >= 0) return invalid_input("shape ", shape_str(spec), " has more than one -1");
      infer = static_cast<int>(i);
      continue;
    }
    if (d == 0 && !allowzero) {
      if (i >= in.size())
        return invalid_input("shape ", shape_str(spec), " copies dim ", i, " (0) but the input ", shape_str(in),
                             " has rank ", in.size());
      d = in[i];
    }
    if (d < 0) return invalid_input("shape ", shape_str(spec), " has negative dim ", d);
    shape[i] = d;
    // A product that wraps could equal the input's element count: overflow cannot match it.
    const auto k = checked_mul(known, d);
    if (!k) return invalid_input("cannot reshape ", shape_str(in), " to ", shape_str(spec), ": its size overflows");
    known = *k;
  }
  if (infer >= 0) {
    if (known == 0 || in_numel % known != 0)
      return invalid_input("cannot reshape ", shape_str(in), " to ", shape_str(spec), ": -1 cannot be inferred");
    shape[infer] = in_numel / known;
  } else if (known != in_numel) {
    return invalid_input("cannot reshape ", shape_str(in), " (", in_numel, " elements) to ", shape_str(spec));
  }
  return shape;
}

}  // namespace llmc::rt
