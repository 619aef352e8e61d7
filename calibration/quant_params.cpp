#include "calibration/quant_params.h"

#include <algorithm>
#include <cfloat>
#include <cmath>

namespace llmc::calib {

Result<QuantLimits> quant_limits(DType type, bool symmetric, bool reduce_range) {
  switch (type) {
    case DType::kI8:
      if (reduce_range) return QuantLimits{-64, 64};
      return symmetric ? QuantLimits{-127, 127} : QuantLimits{-128, 127};
    case DType::kU8:
      if (reduce_range) return QuantLimits{0, 127};
      return symmetric ? QuantLimits{0, 254} : QuantLimits{0, 255};
    case DType::kI16:
      if (reduce_range) return QuantLimits{-16384, 16384};
      return symmetric ? QuantLimits{-32767, 32767} : QuantLimits{-32768, 32767};
    case DType::kU16:
      if (reduce_range) return QuantLimits{0, 32767};
      return symmetric ? QuantLimits{0, 65534} : QuantLimits{0, 65535};
    case DType::kI4:
      return reduce_range ? QuantLimits{-4, 3} : QuantLimits{-8, 7};
    case DType::kU4:
      return reduce_range ? QuantLimits{0, 7} : QuantLimits{0, 15};
    default:
      return unsupported("cannot quantize to ", dtype_name(type),
                         " (supported: i8, u8, i16, u16, i4, u4)");
  }
}

QuantParams compute_scale_zero_point(QuantRange range, QuantLimits limits, bool symmetric) {
  float rmin = std::min(range.min, 0.f);
  float rmax = std::max(range.max, 0.f);
  if (symmetric) {
    const float absmax = std::max(std::fabs(rmin), std::fabs(rmax));
    rmin = -absmax;
    rmax = absmax;
  }
  // numpy: float32 subtraction, then float64 division.
  const double dr = static_cast<double>(rmax - rmin);
  const double dq = static_cast<double>(limits.qmax) - static_cast<double>(limits.qmin);
  const double scale = dr / dq;
  QuantParams p;
  if (!(scale >= static_cast<double>(FLT_MIN))) return p;  // scale 1, zero point 0
  // std::nearbyint rounds half to even in the default rounding mode, like numpy.round.
  const double zp = symmetric ? std::nearbyint((limits.qmin + limits.qmax) / 2.0)
                              : std::nearbyint(limits.qmin - static_cast<double>(rmin) / scale);
  p.zero_point = static_cast<int32_t>(std::clamp(zp, static_cast<double>(limits.qmin),
                                                 static_cast<double>(limits.qmax)));
  p.scale = static_cast<float>(scale);
  return p;
}

Result<QuantParams> quant_params(QuantRange range, DType type, bool symmetric, bool reduce_range) {
  LLMC_ASSIGN_OR_RETURN(QuantLimits limits, quant_limits(type, symmetric, reduce_range));
  return compute_scale_zero_point(range, limits, symmetric);
}

QuantParams int8_symmetric_params(QuantRange range) {
  return compute_scale_zero_point(range, QuantLimits{-127, 127}, true);
}

QuantParams uint8_asymmetric_params(QuantRange range) {
  return compute_scale_zero_point(range, QuantLimits{0, 255}, false);
}

}  // namespace llmc::calib
